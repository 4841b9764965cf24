"""The Stripe events the webhook handles: one list for the code, the simulator, the docs and the setup.

Register the webhook endpoint with exactly these (docs/deploy.md), and
forward exactly these with `stripe listen --events …` when running locally.
"""

from __future__ import annotations

SESSION_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
)

HANDLED_EVENTS = frozenset(SESSION_EVENTS)
