"""The command line: ``python -m devtools.stripe_standin``.

Runs the stand-in as a process of its own, for callers that cannot start it
in-process. It prints one line with its URL once it is listening, then
serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from devtools.stripe_standin.server import StripeStandin


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        description="Local stand-in for Stripe's API: Checkout Sessions, Events, payments."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every API response")
    args = parser.parse_args(argv)

    standin = StripeStandin(latency=args.latency)
    url = standin.start(args.host, args.port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"Stripe stand-in listening on {url}", flush=True)
    while not stop.wait(1.0):
        pass
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
