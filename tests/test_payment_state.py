"""The payment state machine, as a specification.

Stripe delivers webhooks at least once and in any order, so each test pins
one promise of `payments.state`: what each event does, that repeats change
nothing, and that every order of the same events ends in the same record —
refunds and disputes included, which name a PaymentIntent and may arrive
before the session's own events.
"""

from __future__ import annotations

import itertools

import pytest

from payments import events, state
from tests.support.stripe_objects import charge, checkout_session, dispute, event, session_after

T0 = 1_800_000_000  # event `created` times, in seconds
COMPLETED = "checkout.session.completed"
SUCCEEDED = "checkout.session.async_payment_succeeded"
FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
REFUNDED = "charge.refunded"
DISPUTE_CREATED = "charge.dispute.created"
DISPUTE_CLOSED = "charge.dispute.closed"


def session_event(event_type, session, created=T0, id=None, **session_fields):
    """An event of `event_type` whose payload is `session` in that state."""
    return event(event_type, session_after(event_type, session, **session_fields), created=created, id=id)


def refund_event(session, refunded_cents, created=T0, id=None):
    intent = session_after(COMPLETED, session)["payment_intent"]
    return event(
        REFUNDED, charge(intent, amount=session["amount_total"], amount_refunded=refunded_cents), created=created, id=id
    )


def dispute_event(event_type, session, status, created=T0, id=None, **fields):
    intent = session_after(COMPLETED, session)["payment_intent"]
    return event(event_type, dispute(intent, status=status, **fields), created=created, id=id)


class Records:
    """Both records an event may touch, kept as a store keeps them: what `record_change` says to write."""

    def __init__(self):
        self.payments: dict[str, dict] = {}
        self.intents: dict[str, dict] = {}
        self.writes = 0

    def deliver(self, e: dict) -> None:
        change = events.change_from_event(e)
        if isinstance(change, state.ChargeChange):
            intent = self.intents.get(change.payment_intent)
            payment = self.payments.get(intent["session_id"]) if intent and intent["session_id"] else None
        else:
            payment = self.payments.get(change.session_id)
            known = change.payment_intent or (payment or {}).get("payment_intent")
            intent = self.intents.get(known) if known else None
        self.writes += 1
        new_payment, new_intent = state.record_change(payment, intent, change, now=f"write-{self.writes}")
        if new_payment is not None:
            self.payments[new_payment["session_id"]] = new_payment
        if new_intent is not None:
            self.intents[new_intent["payment_intent"]] = new_intent

    def payment(self, session_id: str) -> dict:
        return self.payments[session_id]


def apply_events(evts, record=None):
    """The session's record after `evts` in the given order; `now` counts the writes."""
    records = Records()
    if record is not None:
        records.payments[record["session_id"]] = record
    for e in evts:
        records.deliver(e)
    session_id = next(iter(records.payments)) if records.payments else None
    return records.payments.get(session_id) if session_id else None


def without_times(record):
    """The record minus the write times, which depend on the order of arrival."""
    return {k: v for k, v in record.items() if k not in ("updated_at", "paid_at")}


@pytest.fixture
def session():
    return checkout_session()


# What each session event does on its own.


def test_completed_paid_makes_a_complete_paid_record(session):
    e = session_event(COMPLETED, session, email="ada@example.com")

    record = apply_events([e])

    assert record == {
        "session_id": session["id"],
        "status": "complete",
        "payment_status": "paid",
        "outcome": "paid",
        "created": session["created"],
        "amount_total": 1900,
        "currency": "eur",
        "customer_email": "ada@example.com",
        "metadata": {"product": "hero-me", "order_ref": "ord_000001"},
        "payment_intent": e["data"]["object"]["payment_intent"],
        "livemode": False,
        "async_payment_failed": False,
        "amount_refunded": 0,
        "refunded": False,
        "dispute": None,
        "last_dispute_event_id": None,
        "last_dispute_event_created": None,
        "paid_at": "write-1",
        "updated_at": "write-1",
        "last_event_id": e["id"],
        "last_event_created": T0,
    }


def test_completed_unpaid_is_processing(session):
    record = apply_events([session_event(COMPLETED, session, payment_status="unpaid")])

    assert (record["status"], record["payment_status"], record["paid_at"]) == ("complete", "unpaid", None)
    assert record["outcome"] == "processing"
    assert not state.is_terminal(record)


def test_async_payment_succeeded_marks_paid(session):
    record = apply_events(
        [session_event(COMPLETED, session, payment_status="unpaid"), session_event(SUCCEEDED, session, T0 + 60)]
    )

    assert (record["status"], record["payment_status"], record["paid_at"]) == ("complete", "paid", "write-2")
    assert record["outcome"] == "paid"


def test_async_payment_failed_is_failed_and_terminal(session):
    record = apply_events(
        [session_event(COMPLETED, session, payment_status="unpaid"), session_event(FAILED, session, T0 + 60)]
    )

    assert (record["status"], record["payment_status"], record["paid_at"]) == ("complete", "unpaid", None)
    assert (record["outcome"], record["async_payment_failed"]) == ("failed", True)
    assert state.is_terminal(record)


def test_expired_marks_expired_and_terminal(session):
    e = session_event(EXPIRED, session)

    record = apply_events([e])

    assert (record["status"], record["payment_status"], record["outcome"]) == ("expired", "unpaid", "expired")
    assert record["last_event_id"] == e["id"]
    assert state.is_terminal(record)


def test_an_open_session_read_from_stripe_is_open(session):
    record = state.apply(None, events.change_from_session(session), now="read")

    assert record["outcome"] == "open"
    assert not state.is_terminal(record)


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


@pytest.mark.parametrize("field", ["status", "payment_status"])
@pytest.mark.parametrize("value", ["no_such_state", None], ids=["unknown", "missing"])
def test_an_unknown_or_missing_state_keeps_what_is_known(session, field, value):
    paid = apply_events([session_event(COMPLETED, session)])
    odd = session_after(COMPLETED, session)
    odd[field] = value

    record = state.apply(paid, state.SessionChange(odd, "evt_later", COMPLETED, T0 + 60), now="later")

    assert (record["status"], record["payment_status"]) == ("complete", "paid")


def test_an_unknown_state_on_a_first_event_starts_open_and_unpaid(session):
    odd = session_after(COMPLETED, session, status="no_such_state", payment_status="no_such_state")

    record = state.apply(None, state.SessionChange(odd, "evt_1", COMPLETED, T0), now="now")

    assert (record["status"], record["payment_status"], record["outcome"]) == ("open", "unpaid", "open")


# Refunds and disputes.


def test_a_partial_refund_is_recorded_and_keeps_the_payment_paid(session):
    record = apply_events([session_event(COMPLETED, session), refund_event(session, 500, T0 + 60)])

    assert (record["amount_refunded"], record["refunded"], record["outcome"]) == (500, False, "paid")


def test_a_full_refund_makes_the_payment_refunded_and_terminal(session):
    record = apply_events([session_event(COMPLETED, session), refund_event(session, 1900, T0 + 60)])

    assert (record["amount_refunded"], record["refunded"], record["outcome"]) == (1900, True, "refunded")
    assert state.is_terminal(record)


def test_refunded_amounts_only_grow(session):
    record = apply_events(
        [session_event(COMPLETED, session), refund_event(session, 1000, T0 + 120), refund_event(session, 500, T0 + 60)]
    )

    assert record["amount_refunded"] == 1000


def test_a_dispute_is_recorded_and_the_payment_keeps_its_outcome(session):
    opened = dispute_event(DISPUTE_CREATED, session, "needs_response", T0 + 60, amount=1900)

    record = apply_events([session_event(COMPLETED, session), opened])

    assert record["outcome"] == "paid"
    assert record["dispute"] == {
        "id": opened["data"]["object"]["id"],
        "status": "needs_response",
        "reason": "fraudulent",
        "amount": 1900,
    }


def test_the_newest_dispute_event_wins(session):
    opened = dispute_event(DISPUTE_CREATED, session, "needs_response", T0 + 60)
    lost = dispute_event(DISPUTE_CLOSED, session, "lost", T0 + 120, id=opened["id"].replace("evt_", "evt_z"))
    lost["data"]["object"]["id"] = opened["data"]["object"]["id"]

    for order in ([opened, lost], [lost, opened]):
        record = apply_events([session_event(COMPLETED, session), *order])
        assert record["dispute"]["status"] == "lost"


def test_a_refund_before_the_session_is_known_is_kept_for_it(session):
    records = Records()
    records.deliver(refund_event(session, 1900, T0 + 60))

    assert records.payments == {}
    records.deliver(session_event(COMPLETED, session, T0))

    record = records.payment(session["id"])
    assert (record["refunded"], record["outcome"]) == (True, "refunded")
    assert records.intents[record["payment_intent"]]["session_id"] == session["id"]


def test_a_charge_event_without_a_payment_intent_changes_nothing(session):
    e = event(REFUNDED, charge(None, amount_refunded=1900), created=T0)

    assert events.change_from_event(e) is None


# Repeats and orderings.


def test_duplicate_change_changes_nothing_but_updated_at(session):
    e = session_event(COMPLETED, session)
    first = apply_events([e])

    again = state.apply(first, events.change_from_event(e), now="write-2")

    assert state.same(first, again)
    assert again == {**first, "updated_at": "write-2"}


def _lifecycle(session) -> list[dict]:
    """Everything that can happen to one payment, a minute apart: Stripe would rarely send all of it."""
    opened = dispute_event(DISPUTE_CREATED, session, "needs_response", T0 + 360)
    closed = dispute_event(DISPUTE_CLOSED, session, "lost", T0 + 420)
    closed["data"]["object"]["id"] = opened["data"]["object"]["id"]
    return [
        session_event(COMPLETED, session, T0, payment_status="unpaid"),
        session_event(FAILED, session, T0 + 60),
        session_event(SUCCEEDED, session, T0 + 120),
        session_event(EXPIRED, session, T0 + 180),
        refund_event(session, 500, T0 + 240),
        refund_event(session, 1900, T0 + 300),
        opened,
        closed,
    ]


def test_every_order_of_a_whole_lifecycle_ends_in_the_same_record(session):
    lifecycle = _lifecycle(session)
    expected = without_times(apply_events(lifecycle))

    for order in itertools.permutations(lifecycle):
        assert without_times(apply_events(order)) == expected, [e["type"] for e in order]
    assert (expected["status"], expected["payment_status"], expected["outcome"]) == ("complete", "paid", "refunded")
    assert (expected["amount_refunded"], expected["dispute"]["status"]) == (1900, "lost")


@pytest.mark.parametrize(
    "flow",
    [
        [(COMPLETED, {"payment_status": "unpaid"}), (FAILED, {}), (EXPIRED, {})],
        [(COMPLETED, {"payment_status": "unpaid"}), (SUCCEEDED, {})],
        [(COMPLETED, {}), (EXPIRED, {})],
    ],
    ids=["failed", "delayed-paid", "card"],
)
def test_every_order_of_a_session_flow_ends_in_its_outcome(session, flow):
    evts = [session_event(t, session, created=T0 + 60 * n, **fields) for n, (t, fields) in enumerate(flow)]
    expected = without_times(apply_events(evts))

    for order in itertools.permutations(evts):
        assert without_times(apply_events(order)) == expected
    assert expected["outcome"] == ("failed" if flow[1][0] == FAILED else "paid")


def test_events_created_in_the_same_second_are_ordered_by_event_id(session):
    a = session_event(COMPLETED, session, created=T0, id="evt_A", email="a@example.com")
    b = session_event(SUCCEEDED, session, created=T0, id="evt_B", email="b@example.com")

    for order in ([a, b], [b, a]):
        record = apply_events(order)
        assert (record["customer_email"], record["last_event_id"]) == ("b@example.com", "evt_B")


# Nothing moves backwards.


def test_paid_never_goes_back_to_unpaid(session):
    record = apply_events([session_event(SUCCEEDED, session, T0), session_event(FAILED, session, T0 + 60)])

    assert (record["payment_status"], record["outcome"]) == ("paid", "paid")


def test_complete_never_goes_back_to_open(session):
    complete = apply_events([session_event(COMPLETED, session)])

    record = state.apply(complete, events.change_from_session(session), now="later")  # status "open"

    assert record["status"] == "complete"


def test_expired_never_overwrites_complete(session):
    record = apply_events([session_event(COMPLETED, session, T0), session_event(EXPIRED, session, T0 + 3600)])

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

    after = state.apply(record, events.change_from_session(read), now="read")

    assert (after["status"], after["payment_status"], after["paid_at"]) == ("complete", "paid", "read")
    assert after["customer_email"] == "event@example.com"
    assert after["last_event_id"] == record["last_event_id"]


def test_session_read_fills_descriptions_when_no_event_has(session):
    read = session_after(COMPLETED, session, email="read@example.com")

    record = state.apply(None, events.change_from_session(read), now="read")

    assert (record["status"], record["payment_status"], record["customer_email"]) == (
        "complete",
        "paid",
        "read@example.com",
    )
    assert (record["last_event_id"], record["last_event_created"]) == (None, None)


def test_event_after_a_session_read_takes_over_the_descriptions(session):
    read = state.apply(
        None, events.change_from_session(session_after(COMPLETED, session, email="read@example.com")), "r"
    )
    e = session_event(COMPLETED, session, email="event@example.com")

    record = apply_events([e], record=read)

    assert (record["customer_email"], record["last_event_id"]) == ("event@example.com", e["id"])


def test_a_session_read_whose_delayed_payment_failed_is_failed(session):
    read = session_after(FAILED, session)
    read["payment_intent"] = {
        "id": read["payment_intent"],
        "object": "payment_intent",
        "status": "requires_payment_method",
    }

    record = state.apply(None, events.change_from_session(read), now="read")

    assert record["outcome"] == state.session_outcome(read) == "failed"


def test_a_session_read_whose_delayed_payment_is_pending_is_processing(session):
    read = session_after(COMPLETED, session, payment_status="unpaid")
    read["payment_intent"] = {"id": read["payment_intent"], "object": "payment_intent", "status": "processing"}

    assert state.session_outcome(read) == "processing"


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
    "facts, outcome",
    [
        ({"status": "open", "payment_status": "unpaid"}, "open"),
        ({"status": "complete", "payment_status": "unpaid"}, "processing"),
        ({"status": "complete", "payment_status": "unpaid", "async_payment_failed": True}, "failed"),
        ({"status": "complete", "payment_status": "paid"}, "paid"),
        ({"status": "complete", "payment_status": "no_payment_required"}, "paid"),
        ({"status": "complete", "payment_status": "paid", "async_payment_failed": True}, "paid"),
        ({"status": "expired", "payment_status": "unpaid"}, "expired"),
        ({"status": "complete", "payment_status": "paid", "refunded": True}, "refunded"),
    ],
)
def test_outcome_of_each_combination_of_facts(facts, outcome):
    assert state.outcome(facts) == outcome
    assert state.is_terminal(facts) is (outcome in state.TERMINAL)


def test_unknown_session_is_not_terminal():
    assert state.is_terminal(None) is False


def test_a_later_stage_of_a_dispute_wins_within_the_same_second(session):
    opened = dispute_event(DISPUTE_CREATED, session, "needs_response", T0 + 60, id="evt_zzz")
    lost = dispute_event(DISPUTE_CLOSED, session, "lost", T0 + 60, id="evt_aaa")
    lost["data"]["object"]["id"] = opened["data"]["object"]["id"]

    for order in ([opened, lost], [lost, opened]):
        assert apply_events([session_event(COMPLETED, session), *order])["dispute"]["status"] == "lost"


# A session read from Stripe, alone.


def test_a_paid_session_read_from_stripe_is_paid(session):
    assert state.session_outcome(session_after(COMPLETED, session)) == "paid"


def test_a_completed_session_whose_payment_intent_was_canceled_has_failed(session):
    read = session_after(COMPLETED, session, payment_status="unpaid")
    read["payment_intent"] = {"id": read["payment_intent"], "object": "payment_intent", "status": "canceled"}

    assert state.delayed_payment_failed(read) is True


def test_a_payment_intent_not_expanded_says_nothing_about_a_failure(session):
    read = session_after(COMPLETED, session, payment_status="unpaid")

    assert state.delayed_payment_failed(read) is False


# same: whether a write would change anything.


def test_a_first_record_is_never_the_same_as_nothing(session):
    assert state.same(None, apply_events([session_event(COMPLETED, session)])) is False


def test_records_differing_only_in_their_write_times_are_the_same(session):
    record = apply_events([session_event(COMPLETED, session)])

    assert state.same(record, {**record, "updated_at": "later", "paid_at": "later"}) is True


def test_a_record_newly_paid_is_not_the_same_even_if_nothing_else_changed(session):
    record = apply_events([session_event(COMPLETED, session)])

    assert state.same({**record, "paid_at": None}, record) is False


def test_a_record_with_another_fact_is_not_the_same(session):
    record = apply_events([session_event(COMPLETED, session)])

    assert state.same(record, {**record, "amount_refunded": 100}) is False


# What each field is read from, and the times each write is given.


def test_without_an_email_in_customer_details_the_typed_email_is_kept(session):
    payload = session_after(COMPLETED, session, customer_email="typed@example.com")
    payload["customer_details"]["email"] = None

    assert state.describe(payload)["customer_email"] == "typed@example.com"


def test_a_live_mode_session_is_recorded_as_live(session):
    assert state.describe(session_after(COMPLETED, checkout_session(livemode=True)))["livemode"] is True


def test_a_dispute_record_names_the_event_that_told_it(session):
    opened = dispute_event(DISPUTE_CREATED, session, "needs_response", T0 + 60)

    record = apply_events([session_event(COMPLETED, session), opened])

    assert (record["last_dispute_event_id"], record["last_dispute_event_created"]) == (opened["id"], T0 + 60)


def test_a_refund_names_no_dispute_event(session):
    record = apply_events([session_event(COMPLETED, session), refund_event(session, 500, T0 + 60)])

    assert (record["dispute"], record["last_dispute_event_id"], record["last_dispute_event_created"]) == (
        None,
        None,
        None,
    )


def test_a_later_dispute_event_renames_the_event_that_told_it(session):
    opened = dispute_event(DISPUTE_CREATED, session, "needs_response", T0 + 60)
    lost = dispute_event(DISPUTE_CLOSED, session, "lost", T0 + 120)

    record = apply_events([session_event(COMPLETED, session), opened, lost])

    assert (record["last_dispute_event_id"], record["last_dispute_event_created"]) == (lost["id"], T0 + 120)


@pytest.mark.parametrize(
    ("known", "wins"),
    [("needs_response", "a_stage_stripe_adds_later"), ("won", "won")],
    ids=["after an early stage", "before a final stage"],
)
def test_within_one_second_a_stage_stripe_adds_later_sits_between_early_and_final_stages(session, known, wins):
    """An unknown stage is ranked in the middle, whatever the event ids say (here they say the opposite)."""
    first_id, second_id = ("evt_a", "evt_b") if wins == known else ("evt_b", "evt_a")
    known_event = dispute_event(DISPUTE_CREATED, session, known, T0 + 60, id=first_id)
    new_event = dispute_event(DISPUTE_CREATED, session, "a_stage_stripe_adds_later", T0 + 60, id=second_id)
    new_event["data"]["object"]["id"] = known_event["data"]["object"]["id"]

    for order in ([known_event, new_event], [new_event, known_event]):
        assert apply_events([session_event(COMPLETED, session), *order])["dispute"]["status"] == wins


def test_a_record_with_a_status_no_longer_known_takes_the_one_stripe_sends(session):
    stored = {**apply_events([session_event(COMPLETED, session, created=T0 - 60)]), "status": "retired_state"}
    stored["payment_status"] = "retired_state"

    record = state.apply(stored, state.SessionChange(session_after(EXPIRED, session), "evt_z", EXPIRED, T0), "now")

    assert (record["status"], record["payment_status"]) == ("expired", "unpaid")


def test_a_charge_change_stamps_both_records_with_the_write_time(session):
    records = Records()
    records.deliver(session_event(COMPLETED, session))

    records.deliver(refund_event(session, 1900, T0 + 60))

    intent = next(iter(records.intents.values()))
    assert (records.payment(session["id"])["updated_at"], intent["updated_at"]) == ("write-2", "write-2")


def test_a_new_link_stamps_the_payment_intent_record_with_the_write_time(session):
    records = Records()
    records.deliver(refund_event(session, 1900, T0))

    records.deliver(session_event(COMPLETED, session, created=T0 + 60))

    intent = next(iter(records.intents.values()))
    assert (intent["session_id"], intent["updated_at"]) == (session["id"], "write-2")
    assert records.payment(session["id"])["updated_at"] == "write-2"


def test_a_session_event_for_a_linked_payment_intent_writes_nothing_to_it(session):
    completed = events.change_from_event(session_event(COMPLETED, session))
    payment, intent = state.record_change(None, None, completed, "write-1")
    succeeded = events.change_from_event(session_event(SUCCEEDED, session, created=T0 + 60))

    assert state.record_change(payment, intent, succeeded, "write-2")[1] is None


def test_a_session_event_joins_the_refund_its_linked_payment_intent_holds(session):
    completed = events.change_from_event(session_event(COMPLETED, session))
    payment, intent = state.record_change(None, None, completed, "write-1")
    assert intent is not None
    refunded_intent = {**intent, "amount_refunded": 1900, "refunded": True}
    succeeded = events.change_from_event(session_event(SUCCEEDED, session, created=T0 + 60))

    new_payment, _ = state.record_change(payment, refunded_intent, succeeded, "write-2")

    assert (new_payment["outcome"], new_payment["updated_at"]) == ("refunded", "write-2")


def test_a_session_change_naming_no_payment_intent_joins_the_one_its_record_names(session):
    completed = events.change_from_event(session_event(COMPLETED, session))
    payment, intent = state.record_change(None, None, completed, "write-1")
    assert intent is not None
    refunded_intent = {**intent, "amount_refunded": 1900, "refunded": True}
    without_intent = {**session_after(COMPLETED, session), "payment_intent": None}
    read = state.SessionChange(without_intent)  # a session read from Stripe, its PaymentIntent not given

    new_payment, _ = state.record_change(payment, refunded_intent, read, "write-2")

    assert new_payment["outcome"] == "refunded"


def test_joining_charge_facts_already_held_keeps_the_write_time(session):
    records = Records()
    records.deliver(session_event(COMPLETED, session))
    records.deliver(refund_event(session, 500, T0 + 60))
    payment = records.payment(session["id"])
    intent = next(iter(records.intents.values()))

    assert state.merge(payment, intent, "write-3")["updated_at"] == payment["updated_at"]


def test_joining_new_charge_facts_stamps_the_write_time(session):
    payment = apply_events([session_event(COMPLETED, session)])
    intent = {**state._new_intent_record(payment["payment_intent"]), "amount_refunded": 500}

    assert state.merge(payment, intent, "write-9")["updated_at"] == "write-9"
