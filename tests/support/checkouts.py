"""Checkout Sessions made and paid at the Stripe stand-in, through the real SDK, as our create endpoint makes them."""

from __future__ import annotations

import stripe

from checkout.create import session_params
from tests.conftest import TEST_KEY


def new_session(standin) -> str:
    """An open Checkout Session for one board, with an email and metadata to carry into the record."""
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": standin.base_url})
    params = session_params(
        "https://shop.example.com/return?session_id={CHECKOUT_SESSION_ID}",
        customer_email="buyer@example.com",
        metadata={"board": "feelings"},
    )
    return client.v1.checkout.sessions.create(params=params).id


def paid_sessions(standin, count: int) -> list[str]:
    """`count` sessions completed and paid by card; their events are not delivered anywhere."""
    sessions = [new_session(standin) for _ in range(count)]
    for session_id in sessions:
        standin.complete(session_id)
    return sessions
