"""The one cold-start trick: import the stripe SDK without `requests` (main.py imports this first).

The SDK imports every HTTP library it finds so that its default clients can
use them, and `requests`, a dependency of the SDK, costs ~25 ms of every cold
start (bench/README.md). This service gives the SDK its own transport
(common/stripe_http.py), so stripe is imported here while `requests` is
hidden; the SDK then leaves its requests-based client unusable, and nothing
here uses it. `requests` stays importable for everything else: Google's auth
library imports it when it needs it.
"""

import sys

_hide = "requests" not in sys.modules
if _hide:
    sys.modules["requests"] = None  # type: ignore[assignment]  # `import requests` now raises ImportError
try:
    import stripe  # noqa: F401
finally:
    if _hide:
        del sys.modules["requests"]
