"""Any JSON under a valid signature: the webhook answers 200 or 400, never 500, and never writes half.

A signature proves the body came from whoever holds the secret, not that it
is well formed: a Stripe bug, a test tool or a leaked secret can sign
anything. A 500 would make Stripe retry for days; a 400 tells it the event is
refused. Bodies are drawn by Hypothesis: mostly Stripe-shaped events with
some fields replaced by any JSON, and sometimes any JSON at all.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from payments.events import SESSION_EVENTS
from tests.conftest import signed_headers
from tests.support import stripe_objects

LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])


def mostly(usual: st.SearchStrategy, rare: st.SearchStrategy, one_in: int = 5) -> st.SearchStrategy:
    """`usual`, and `rare` about once in `one_in` draws (one_of alone would favour the larger strategy)."""
    return st.integers(1, one_in).flatmap(lambda n: rare if n == 1 else usual)


TEXT = mostly(st.text(max_size=20), st.builds(lambda a, b: a + b, st.text(max_size=5), LONE_SURROGATES), 10)
SCALARS = (
    st.none()
    | st.booleans()
    | TEXT
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
)
ANY_JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)


def either(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly what Stripe sends, sometimes any JSON in its place."""
    return mostly(good, ANY_JSON)


SESSION_FIELDS = {
    "object": either(st.just("checkout.session")),
    "status": either(st.sampled_from(["open", "complete", "expired"])),
    "payment_status": either(st.sampled_from(["paid", "unpaid", "no_payment_required"])),
    "amount_total": either(st.none() | st.integers(min_value=0, max_value=10**8)),
    "currency": either(st.sampled_from(["usd", "eur"])),
    "customer_email": either(st.none() | st.emails()),
    "customer_details": either(st.none() | st.fixed_dictionaries({"email": either(st.none() | st.emails())})),
    "metadata": either(st.dictionaries(st.text(min_size=1, max_size=40), st.text(max_size=500), max_size=4)),
    "payment_intent": either(st.none() | st.from_regex(r"pi_[A-Za-z0-9]{8,24}", fullmatch=True)),
    "livemode": either(st.booleans()),
    "created": either(st.integers(min_value=1_500_000_000, max_value=2_000_000_000)),
}


@st.composite
def sessions(draw):
    session = stripe_objects.checkout_session()
    good_id = session["id"]
    for name, strategy in SESSION_FIELDS.items():
        if draw(st.booleans()):
            session[name] = draw(strategy)
    if draw(st.integers(0, 9)) == 0:
        del session[draw(st.sampled_from(sorted(session)))]
    session["id"] = draw(either(st.just(good_id)))
    return session


@st.composite
def events(draw):
    event = stripe_objects.event(draw(st.sampled_from(SESSION_EVENTS)), draw(sessions()))
    event["id"] = draw(either(st.just(event["id"]) | st.from_regex(r"evt_[A-Za-z0-9]{1,30}", fullmatch=True)))
    event["type"] = draw(either(st.sampled_from(SESSION_EVENTS) | st.just("customer.created")))
    event["created"] = draw(either(st.just(event["created"])))
    if draw(st.integers(0, 9)) == 0:
        event["data"] = draw(ANY_JSON)
    return event


PAYLOADS = mostly(events(), ANY_JSON, 10)


def completed_with(**fields) -> dict:
    """A completed-session event with some of its fields replaced."""
    event = stripe_objects.event(
        "checkout.session.completed", stripe_objects.checkout_session(status="complete", payment_status="paid")
    )
    for name, value in fields.items():
        if name.startswith("event_"):
            event[name[len("event_") :]] = value
        else:
            event["data"]["object"][name] = value
    return event


def snapshot(payments, event) -> tuple:
    """What the store holds that this delivery could change."""
    session = (
        event.get("data", {}).get("object") if isinstance(event, dict) and isinstance(event.get("data"), dict) else None
    )
    session_id = session.get("id") if isinstance(session, dict) else None
    record = payments.record(session_id) if isinstance(session_id, str) and stripe_ids_shape(session_id) else None
    return sorted(payments.event_ids()), record


def stripe_ids_shape(value: str) -> bool:
    return value.startswith(("cs_test_", "cs_live_")) and value.isascii() and value.replace("_", "").isalnum()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(payload=PAYLOADS)
# The shapes found by hand before this test existed: each must be a 400 (or, where harmless, a 200).
@example(payload=completed_with(metadata=["board"]))
@example(payload=completed_with(metadata="board"))
@example(payload=completed_with(customer_details="buyer@example.com"))
@example(payload=completed_with(status=["complete"]))
@example(payload=completed_with(payment_status={"paid": True}))
@example(payload=completed_with(event_created=2**70))
@example(payload=completed_with(event_id="evt_a/b"))
@example(payload=completed_with(amount_total=1e30))
@example(payload=completed_with(metadata={"board": "\ud800"}))
def test_any_signed_json_is_a_200_or_a_400_and_a_refusal_writes_nothing(client, sqlite_payments, payload):
    body = json.dumps(payload)  # escapes lone surrogates as \\udXXX, as any JSON writer may
    before = snapshot(sqlite_payments, payload)

    response = client.post("/webhook", content=body, headers=signed_headers(body))

    assert response.status_code in (200, 400), response.text
    assert response.headers["content-type"] == "application/json"
    after = snapshot(sqlite_payments, payload)
    if response.status_code == 400:
        assert after == before
    elif response.json().get("duplicate") is False:
        assert payload["id"] in after[0]
