"""A local stand-in for Stripe's API: Checkout Sessions, Events, and the money after them.

The real ``stripe`` SDK can be pointed at it (``base_addresses={"api": url}``)
so tests, local runs and benchmarks exercise the genuine client code path:
form-encoded requests, Stripe-shaped JSON errors, idempotency keys, list
paging and the SDK's own retry logic. Parameters are checked against the
parameter types that ship with stripe-python, and ``ui_mode`` against the
requested API version, so a request Stripe would reject fails here too
instead of first failing in production.

Stripe's endpoints: Checkout Sessions (create, list, retrieve, expire),
Events (list with Stripe's paging and filters, retrieve), and retrieving
PaymentIntents, Charges, Refunds and Disputes. Besides them it offers
controls for playing Stripe's part (completion, delayed payment results,
expiry, refunds, disputes), for injecting latency and failures and for
moving its clock, both as Python methods and as unauthenticated HTTP
endpoints under ``/_standin/`` so other processes can drive it.

Library use::

    with StripeStandin() as standin:
        client = stripe.StripeClient(
            "sk_test_123", base_addresses={"api": standin.base_url}
        )
        session = client.v1.checkout.sessions.create(params={...})
        events = standin.complete(session.id)       # deliver these to the webhook
        events = standin.refund_payment(session.id, 50)

Command line::

    python -m devtools.stripe_standin --host 127.0.0.1 --port 12111 [--latency 0.1]

The package, in the order a request meets it:

- ``transport``: Werkzeug's threaded server and a small WSGI app, with
  keep-alive between requests and idle connections cut on stop.
- ``server``: ``StripeStandin``: start and stop, controls, views of what is
  stored, and the simulation methods.
- ``api``: the ``/v1`` endpoints: authentication, API versions, injected
  faults and latency, idempotency keys, the request log.
- ``admin``: the ``/_standin/`` endpoints, thin wrappers of the methods.
- ``listing``: Stripe's list paging and the ``created`` / event type filters.
- ``simulation``: what happens on Stripe's side, and the events it sends.
- ``state``: everything stored, behind one lock, and the clock.
- ``params``: form decoding, and parameter checks against stripe-python's
  TypedDicts and the ui_mode / API version rules.
- ``objects``: line items, prices, Checkout Sessions and events;
  ``payments``: PaymentIntents, Charges, Refunds and Disputes; both shaped
  as Stripe returns them.
- ``errors``: ``StripeError`` in Stripe's JSON shape, and the faults
  ``fail_next`` can inject.
- ``__main__``: the command line.
"""

from __future__ import annotations

from typing import Any

from devtools.stripe_standin.errors import StripeError
from devtools.stripe_standin.params import DEFAULT_API_VERSION, decode_form
from devtools.stripe_standin.server import StripeStandin
from devtools.stripe_standin.state import LoggedRequest

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
