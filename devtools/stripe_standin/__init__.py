"""A local stand-in for the Stripe Checkout Sessions API.

The real ``stripe`` SDK can be pointed at it (``base_addresses={"api": url}``)
so tests, local runs and benchmarks exercise the genuine client code path:
form-encoded requests, Stripe-shaped JSON errors, idempotency keys and the
SDK's own retry logic. Create parameters are checked against the parameter
types that ship with stripe-python, and ``ui_mode`` is checked against the
requested API version, so a parameter Stripe would reject fails here too
instead of first failing in production.

Besides the Stripe endpoints it offers controls for simulating payments
(completion, asynchronous payment results, expiry) and for injecting
latency and failures, both as Python methods and as unauthenticated HTTP
endpoints under ``/_standin/`` so other processes can drive it.

Library use::

    with StripeStandin() as standin:
        client = stripe.StripeClient(
            "sk_test_123", base_addresses={"api": standin.base_url}
        )
        session = client.v1.checkout.sessions.create(params={...})
        events = standin.complete(session.id)

Command line::

    python -m devtools.stripe_standin --host 127.0.0.1 --port 12111 [--latency 0.1]

The package, in the order a request meets it:

- ``transport``: Werkzeug's threaded server and a small WSGI app, with
  keep-alive between requests and idle connections cut on stop.
- ``server``: ``StripeStandin``, with its state behind one lock:
  authentication, the Checkout Sessions endpoints, idempotency keys,
  injected faults and latency, the request log, the simulation of payments
  and expiry, and the ``/_standin/`` admin endpoints.
- ``params``: form decoding, and parameter checks against stripe-python's
  TypedDicts and the ui_mode / API version rules.
- ``objects``: line items, prices, Checkout Sessions and events, shaped as
  Stripe returns them.
- ``errors``: ``StripeError`` in Stripe's JSON shape, and the faults
  ``fail_next`` can inject.
- ``__main__``: the command line.
"""

from __future__ import annotations

from typing import Any

# Every public name of the former single module stays importable from here;
# __all__ lists the ones meant for callers.
from devtools.stripe_standin.errors import FAULT_STATUSES, FAULTS, StripeError
from devtools.stripe_standin.objects import build_line_items, build_session
from devtools.stripe_standin.params import (
    DEFAULT_API_VERSION,
    METADATA_MAX_KEY_LENGTH,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_LENGTH,
    MIN_SESSION_LIFETIME_SECONDS,
    NEW_UI_MODES,
    OLD_UI_MODES,
    SESSION_LIFETIME_SECONDS,
    UI_MODE_RENAME_VERSION,
    check_params,
    decode_form,
    validate_create_params,
)
from devtools.stripe_standin.server import LOGGED_HEADERS, LoggedRequest, StripeStandin

__all__ = [
    "DEFAULT_API_VERSION",
    "LoggedRequest",
    "StripeError",
    "StripeStandin",
    "decode_form",
    "main",
]


def __getattr__(name: str) -> Any:
    # main lives in __main__. Importing it eagerly here would load that module
    # a second time under `python -m devtools.stripe_standin`, which runpy
    # warns about, so it is looked up on first use instead.
    if name == "main":
        from devtools.stripe_standin.__main__ import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
