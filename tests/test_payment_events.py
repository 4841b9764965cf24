"""`payments.events`: which signed events change a payment, and the checks every field they carry must pass.

Each check is pinned on both sides: the last value accepted and the first
refused. A refusal names the event and the field, never the value.
"""

from __future__ import annotations

import pytest

from common.errors import InvalidRequest
from payments import events
from payments.events import LATEST_TIME, MAX_AMOUNT, MAX_EMAIL_CHARS
from payments.state import ChargeChange, SessionChange
from tests.support.stripe_objects import charge, checkout_session, dispute, event

T0 = 1_800_000_000
EVENT_ID = "evt_1NxA2b"
INTENT = "pi_3MtwBwLkdIwHu7ix"
ABSENT = object()


def with_fields(obj: dict, fields: dict) -> dict:
    for name, value in fields.items():
        if value is ABSENT:
            obj.pop(name, None)
        else:
            obj[name] = value
    return obj


def session_event(event_type: str = "checkout.session.completed", **fields) -> dict:
    """A session event whose Checkout Session has `fields` replaced (ABSENT removes one)."""
    session = checkout_session(status="complete", payment_status="paid", payment_intent=INTENT)
    return event(event_type, with_fields(session, fields), created=T0, id=EVENT_ID)


def refund_event(**fields) -> dict:
    return event("charge.refunded", with_fields(charge(INTENT, 1900, 500), fields), created=T0, id=EVENT_ID)


def dispute_event(event_type: str = "charge.dispute.created", **fields) -> dict:
    return event(event_type, with_fields(dispute(INTENT), fields), created=T0, id=EVENT_ID)


def refused(evt: dict) -> str:
    with pytest.raises(InvalidRequest) as refusal:
        events.change_from_event(evt)
    return str(refusal.value)


# -- the event itself ----------------------------------------------------------------------


@pytest.mark.parametrize("event_id", ["evt_", "evt_a/b", "cs_test_a1", "evt_a\n", 42])
def test_an_event_id_not_of_stripes_shape_is_refused(event_id):
    evt = session_event()
    evt["id"] = event_id

    assert refused(evt) == "Event id is not a Stripe event id."


@pytest.mark.parametrize("created", [0, T0, LATEST_TIME])
def test_an_event_created_from_1970_to_2100_is_accepted(created):
    evt = session_event()
    evt["created"] = created

    assert events.change_from_event(evt).created == created


@pytest.mark.parametrize("created", [-1, LATEST_TIME + 1, 1.8e9, True, "1800000000"])
def test_an_event_created_at_any_other_time_is_refused(created):
    evt = session_event()
    evt["created"] = created

    assert refused(evt) == f"Event {EVENT_ID} has an invalid created."


def test_an_event_of_a_type_not_handled_changes_nothing():
    evt = event("customer.created", {"id": "cus_1", "object": "customer"}, created=T0, id=EVENT_ID)

    assert events.change_from_event(evt) is None


def test_an_event_of_a_type_not_handled_is_still_refused_with_a_malformed_id():
    evt = event("customer.created", {"id": "cus_1", "object": "customer"}, created=T0, id="evt_a/b")

    assert refused(evt) == "Event id is not a Stripe event id."


# -- checkout.session events -------------------------------------------------------------------


@pytest.mark.parametrize("event_type", events.SESSION_EVENTS)
def test_a_session_event_is_a_session_change_carrying_the_event(event_type):
    change = events.change_from_event(session_event(event_type))

    assert isinstance(change, SessionChange)
    assert (change.event_id, change.event_type, change.created) == (EVENT_ID, event_type, T0)
    assert change.session["object"] == "checkout.session"
    assert change.payment_failed is (event_type == "checkout.session.async_payment_failed")


@pytest.mark.parametrize("data", [["checkout.session"], "cs_test_a1", None])
def test_a_session_event_whose_object_is_not_an_object_is_refused(data):
    evt = session_event()
    evt["data"]["object"] = data

    assert refused(evt) == f"Event {EVENT_ID} has an invalid data.object."


@pytest.mark.parametrize(
    "fields",
    [{"object": "payment_intent"}, {"object": ABSENT}, {"id": "cs_prod_a1"}, {"id": "cs_test_a1\n"}, {"id": ABSENT}],
    ids=["another object", "no object", "another id", "an id and a newline", "no id"],
)
def test_a_session_event_about_something_else_than_a_checkout_session_is_refused(fields):
    assert refused(session_event(**fields)) == f"Event {EVENT_ID} has an invalid data.object."


ACCEPTED = [
    ("status", [ABSENT, None, "open", "complete", "expired", "a_state_stripe_adds_later", "x" * 64]),
    ("payment_status", [ABSENT, None, "paid", "no_payment_required"]),
    ("currency", [ABSENT, None, "usd", "eur"]),
    ("amount_total", [ABSENT, None, 0, 200, MAX_AMOUNT]),
    ("created", [ABSENT, None, 0, LATEST_TIME]),
    ("livemode", [ABSENT, False, True]),
    ("payment_intent", [ABSENT, None, INTENT]),
    ("customer_details", [ABSENT, None, {}, {"email": None}, {"email": "buyer@example.com"}]),
    ("customer_email", [ABSENT, None, "buyer@example.com", "b" * MAX_EMAIL_CHARS]),
    ("metadata", [ABSENT, None, {}, {"k" * 40: "v" * 500}, {f"k{i}": "v" for i in range(50)}]),
]
REFUSED = [
    ("status", ["", "complete!", "complète", "x" * 65, 2, ["open"]]),
    ("payment_status", ["", "_", "paid now", {"paid": True}]),
    ("currency", ["USD", "us", "usdd", "", 840]),
    ("amount_total", [-1, MAX_AMOUNT + 1, 2.5, True, "200"]),
    ("created", [-1, LATEST_TIME + 1, "0"]),
    ("livemode", [None, "true", 1]),
    ("payment_intent", ["ch_3MtwBw", "pi_", {"id": INTENT}, 7]),
    ("customer_details", ["buyer@example.com", ["buyer@example.com"]]),
    ("metadata", ["board", ["board"], {"k" * 41: "v"}, {"k": "v" * 501}, {"k": 1}, {f"k{i}": "v" for i in range(51)}]),
]


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, values in ACCEPTED for v in values])
def test_a_session_field_of_the_type_stripe_documents_is_accepted(field, value):
    change = events.change_from_event(session_event(**{field: value}))

    assert isinstance(change, SessionChange)


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, values in REFUSED for v in values])
def test_a_session_field_of_another_type_is_refused_naming_the_field(field, value):
    assert refused(session_event(**{field: value})) == f"Event {EVENT_ID} has an invalid {field}."


@pytest.mark.parametrize("where", ["customer_email", "customer_details"])
@pytest.mark.parametrize("email", ["b" * (MAX_EMAIL_CHARS + 1), "\udfff@example.com", 42])
def test_a_buyers_email_too_long_not_unicode_or_not_text_is_refused(where, email):
    evt = session_event(**{where: email if where == "customer_email" else {"email": email}})

    assert refused(evt) == f"Event {EVENT_ID} has an invalid customer email."


def test_a_metadata_key_with_a_lone_surrogate_is_refused():
    assert refused(session_event(metadata={"\ud800": "v"})) == f"Event {EVENT_ID} has an invalid metadata."


# -- a session read from Stripe ------------------------------------------------------------------


def test_a_session_read_from_stripe_may_carry_its_payment_intent_expanded():
    session = checkout_session(status="complete", payment_status="paid", payment_intent={"id": INTENT})

    change = events.change_from_session(session)

    assert (change.event_id, change.payment_intent, change.payment_failed) == (None, INTENT, False)


def test_a_session_read_from_stripe_whose_delayed_payment_failed_is_a_failed_payment():
    intent = {"id": INTENT, "status": "requires_payment_method"}
    session = checkout_session(status="complete", payment_status="unpaid", payment_intent=intent)

    assert events.change_from_session(session).payment_failed is True


def test_a_malformed_session_read_from_stripe_is_refused_naming_the_session():
    session = checkout_session(status="complete", payment_status="paid", payment_intent={"id": "ch_1"})

    with pytest.raises(InvalidRequest) as refusal:
        events.change_from_session(session)
    assert str(refusal.value) == "Checkout Session has an invalid payment_intent."


def test_a_session_read_from_stripe_that_is_not_an_object_is_refused_naming_the_session():
    with pytest.raises(InvalidRequest) as refusal:
        events.change_from_session(["checkout.session"])  # type: ignore[arg-type]
    assert str(refusal.value) == "Checkout Session has an invalid data.object."


# -- charge.refunded ---------------------------------------------------------------------------


def test_a_refund_is_a_charge_change_with_the_cumulative_amount():
    change = events.change_from_event(refund_event(amount_refunded=1900, refunded=True))

    assert change == ChargeChange(INTENT, EVENT_ID, "charge.refunded", T0, amount_refunded=1900, refunded=True)


def test_a_partial_refund_is_not_refunded():
    change = events.change_from_event(refund_event(amount_refunded=500, refunded=False))

    assert (change.amount_refunded, change.refunded) == (500, False)


def test_a_refund_of_a_charge_without_a_payment_intent_changes_nothing():
    assert events.change_from_event(refund_event(payment_intent=None)) is None


@pytest.mark.parametrize("charge_id", ["ch_3MtwBw", "py_3MtwBw"])
def test_a_refund_of_a_card_or_other_payment_charge_is_accepted(charge_id):
    assert events.change_from_event(refund_event(id=charge_id)) is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"object": "refund"}, "data.object"),
        ({"id": "re_3MtwBw"}, "data.object"),
        ({"id": ABSENT}, "data.object"),
        ({"payment_intent": "cs_test_a1"}, "payment_intent"),
        ({"amount_refunded": -1}, "amount_refunded"),
        ({"amount_refunded": MAX_AMOUNT + 1}, "amount_refunded"),
        ({"amount_refunded": ABSENT}, "amount_refunded"),
        ({"refunded": "yes"}, "refunded"),
        ({"refunded": ABSENT}, "refunded"),
    ],
)
def test_a_malformed_refund_is_refused_naming_the_field(fields, field):
    assert refused(refund_event(**fields)) == f"Event {EVENT_ID} has an invalid {field}."


def test_a_refund_of_the_largest_amount_is_accepted():
    assert events.change_from_event(refund_event(amount_refunded=MAX_AMOUNT)).amount_refunded == MAX_AMOUNT


# -- charge.dispute.* ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", events.DISPUTE_EVENTS)
def test_a_dispute_event_is_a_charge_change_carrying_the_dispute(event_type):
    evt = dispute_event(event_type, id="dp_1Abc", status="under_review", reason="fraudulent", amount=1900)

    change = events.change_from_event(evt)

    assert change == ChargeChange(
        INTENT,
        EVENT_ID,
        event_type,
        T0,
        dispute={"id": "dp_1Abc", "status": "under_review", "reason": "fraudulent", "amount": 1900},
    )


def test_a_dispute_of_a_charge_without_a_payment_intent_changes_nothing():
    assert events.change_from_event(dispute_event(payment_intent=None)) is None


@pytest.mark.parametrize("dispute_id", ["dp_1Abc", "du_1Abc"])
def test_a_dispute_or_an_early_fraud_dispute_id_is_accepted(dispute_id):
    assert events.change_from_event(dispute_event(id=dispute_id)) is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"object": "charge"}, "data.object"),
        ({"id": "ch_1Abc"}, "data.object"),
        ({"payment_intent": "pi_"}, "payment_intent"),
        ({"amount": -1}, "amount"),
        ({"amount": ABSENT}, "amount"),
        ({"reason": "not a word"}, "reason"),
        ({"reason": ABSENT}, "reason"),
        ({"status": "lost!"}, "status"),
        ({"status": ABSENT}, "status"),
    ],
)
def test_a_malformed_dispute_is_refused_naming_the_field(fields, field):
    assert refused(dispute_event(**fields)) == f"Event {EVENT_ID} has an invalid {field}."
