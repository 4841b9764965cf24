"""``python -m devtools.stripe_standin``: serve until SIGINT or SIGTERM."""

import sys

from devtools.stripe_standin.server import main

if __name__ == "__main__":
    sys.exit(main())
