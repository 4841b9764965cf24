"""The payment state machine, as a specification.

Stripe delivers webhooks at least once and in any order, so each test pins
one promise of `payments.state.apply`: what each event does, that repeats
change nothing, and that every order of the same events ends in the same
record.
"""

from __future__ import annotations

import itertools

import pytest

from payments import state
from tests.support.stripe_objects import checkout_session, event, session_after

T0 = 1_800_000_000  # event `created` times, in seconds
COMPLETED = "checkout.session.completed"
SUCCEEDED = "checkout.session.async_payment_succeeded"
FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"


def session_event(event_type, session, created=T0, id=None, **session_fields):
    """An event of `event_type` whose payload is `session` in that state."""
    return event(event_type, session_after(event_type, session, **session_fields), created=created, id=id)


def apply_events(events, record=None):
    """Apply events in the given order; `now` counts the writes."""
    for n, e in enumerate(events, start=1):
        record = state.apply(record, state.change_from_event(e), now=f"write-{n}")
    return record


def without_times(record):
    """The record minus the write times, which depend on the order of arrival."""
    return {k: v for k, v in record.items() if k not in ("updated_at", "paid_at")}


@pytest.fixture
def session():
    return checkout_session()


# What each event does on its own.


def test_completed_paid_makes_a_complete_paid_record(session):
    e = session_event(COMPLETED, session, email="ada@example.com")

    record = apply_events([e])

    assert record == {
        "session_id": session["id"],
        "status": "complete",
        "payment_status": "paid",
        "created": session["created"],
        "amount_total": 1900,
        "currency": "eur",
        "customer_email": "ada@example.com",
        "metadata": {"product": "hero-me", "order_ref": "ord_000001"},
        "payment_intent": e["data"]["object"]["payment_intent"],
        "livemode": False,
        "paid_at": "write-1",
        "updated_at": "write-1",
        "last_event_id": e["id"],
        "last_event_created": T0,
    }


def test_completed_unpaid_is_complete_but_not_paid(session):
    e = session_event(COMPLETED, session, payment_status="unpaid")

    record = apply_events([e])

    assert (record["status"], record["payment_status"], record["paid_at"]) == ("complete", "unpaid", None)
    assert not state.is_terminal(record)


def test_async_payment_succeeded_marks_paid(session):
    record = apply_events(
        [session_event(COMPLETED, session, payment_status="unpaid"), session_event(SUCCEEDED, session, T0 + 60)]
    )

    assert (record["status"], record["payment_status"], record["paid_at"]) == ("complete", "paid", "write-2")


def test_async_payment_failed_leaves_complete_and_unpaid(session):
    record = apply_events(
        [session_event(COMPLETED, session, payment_status="unpaid"), session_event(FAILED, session, T0 + 60)]
    )

    assert (record["status"], record["payment_status"], record["paid_at"]) == ("complete", "unpaid", None)


def test_expired_marks_expired_and_terminal(session):
    e = session_event(EXPIRED, session)

    record = apply_events([e])

    assert (record["status"], record["payment_status"], record["paid_at"]) == ("expired", "unpaid", None)
    assert record["last_event_id"] == e["id"]
    assert state.is_terminal(record)


def test_first_record_keeps_the_session_created_time(session):
    record = apply_events([session_event(EXPIRED, session, created=T0 + 86400)])

    assert record["created"] == session["created"]
    assert record["last_event_created"] == T0 + 86400


def test_description_prefers_customer_details_email_and_unexpands_payment_intent(session):
    payload = session_after(COMPLETED, session, customer_email="typed@example.com", email="confirmed@example.com")
    payload["payment_intent"] = {"id": "pi_expanded", "object": "payment_intent"}

    described = state.describe(payload)

    assert described["customer_email"] == "confirmed@example.com"
    assert described["payment_intent"] == "pi_expanded"


# Repeats and orderings.


def test_duplicate_change_changes_nothing_but_updated_at(session):
    e = session_event(COMPLETED, session)
    first = apply_events([e])

    again = state.apply(first, state.change_from_event(e), now="write-2")

    assert state.same(first, again)
    assert again == {**first, "updated_at": "write-2"}


UNPAID_FLOW = [
    (COMPLETED, {"payment_status": "unpaid"}),
    (SUCCEEDED, {}),
    (FAILED, {}),
    (EXPIRED, {}),
]
CARD_FLOW = [(COMPLETED, {}), (EXPIRED, {})]


@pytest.mark.parametrize("flow", [UNPAID_FLOW, CARD_FLOW], ids=["delayed_payment", "card"])
def test_every_order_of_the_same_events_ends_in_the_same_record(session, flow):
    events = [
        session_event(event_type, session, created=T0 + 60 * n, **fields)
        for n, (event_type, fields) in enumerate(flow)
    ]
    expected = without_times(apply_events(events))

    for order in itertools.permutations(events):
        assert without_times(apply_events(order)) == expected, [e["type"] for e in order]
    assert (expected["status"], expected["payment_status"]) == ("complete", "paid")


def test_events_created_in_the_same_second_are_ordered_by_event_id(session):
    a = session_event(COMPLETED, session, created=T0, id="evt_A", email="a@example.com")
    b = session_event(SUCCEEDED, session, created=T0, id="evt_B", email="b@example.com")

    for order in ([a, b], [b, a]):
        record = apply_events(order)
        assert (record["customer_email"], record["last_event_id"]) == ("b@example.com", "evt_B")


# Nothing moves backwards.


def test_paid_never_goes_back_to_unpaid(session):
    record = apply_events(
        [session_event(SUCCEEDED, session, T0), session_event(FAILED, session, T0 + 60)]
    )

    assert record["payment_status"] == "paid"


def test_complete_never_goes_back_to_open(session):
    complete = apply_events([session_event(COMPLETED, session)])

    record = state.apply(complete, state.change_from_session(session), now="later")  # status "open"

    assert record["status"] == "complete"


def test_expired_never_overwrites_complete(session):
    record = apply_events(
        [session_event(COMPLETED, session, T0), session_event(EXPIRED, session, T0 + 3600)]
    )

    assert (record["status"], record["payment_status"]) == ("complete", "paid")


def test_older_event_never_overwrites_descriptions_of_a_newer_one(session):
    newer = session_event(SUCCEEDED, session, T0 + 60, email="new@example.com", metadata={"v": "2"})
    older = session_event(COMPLETED, session, T0, email="old@example.com", metadata={"v": "1"}, payment_status="unpaid")

    record = apply_events([newer, older])

    assert (record["customer_email"], record["metadata"]) == ("new@example.com", {"v": "2"})
    assert (record["last_event_id"], record["last_event_created"]) == (newer["id"], T0 + 60)


# A Session read from Stripe (fulfilment from the return page).


def test_session_read_moves_status_forward_but_keeps_event_descriptions(session):
    record = apply_events([session_event(COMPLETED, session, email="event@example.com", payment_status="unpaid")])
    read = session_after(SUCCEEDED, session, email="read@example.com")

    after = state.apply(record, state.change_from_session(read), now="read")

    assert (after["status"], after["payment_status"], after["paid_at"]) == ("complete", "paid", "read")
    assert after["customer_email"] == "event@example.com"
    assert after["last_event_id"] == record["last_event_id"]


def test_session_read_fills_descriptions_when_no_event_has(session):
    read = session_after(COMPLETED, session, email="read@example.com")

    record = state.apply(None, state.change_from_session(read), now="read")

    assert (record["status"], record["payment_status"], record["customer_email"]) == (
        "complete",
        "paid",
        "read@example.com",
    )
    assert (record["last_event_id"], record["last_event_created"]) == (None, None)


def test_event_after_a_session_read_takes_over_the_descriptions(session):
    read = state.apply(None, state.change_from_session(session_after(COMPLETED, session, email="read@example.com")), "r")
    e = session_event(COMPLETED, session, email="event@example.com")

    record = apply_events([e], record=read)

    assert (record["customer_email"], record["last_event_id"]) == ("event@example.com", e["id"])


# paid_at and is_terminal.


def test_paid_at_is_set_once_when_first_seen_paid(session):
    record = apply_events(
        [
            session_event(COMPLETED, session, T0, payment_status="unpaid"),
            session_event(SUCCEEDED, session, T0 + 60),
            session_event(SUCCEEDED, session, T0 + 120),
        ]
    )

    assert record["paid_at"] == "write-2"
    assert record["updated_at"] == "write-3"


def test_no_payment_required_counts_as_paid(session):
    record = apply_events([session_event(COMPLETED, session, payment_status="no_payment_required", amount_total=0)])

    assert record["paid_at"] == "write-1"
    assert state.is_terminal(record)


@pytest.mark.parametrize(
    "status, payment_status, terminal",
    [
        ("open", "unpaid", False),
        ("complete", "unpaid", False),
        ("complete", "paid", True),
        ("complete", "no_payment_required", True),
        ("expired", "unpaid", True),
    ],
)
def test_is_terminal(status, payment_status, terminal):
    assert state.is_terminal({"status": status, "payment_status": payment_status}) is terminal


def test_unknown_session_is_not_terminal():
    assert state.is_terminal(None) is False
