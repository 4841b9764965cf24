"""The payment state machine: (record, change) -> record, with no I/O.

Stripe delivers events at least once and in no particular order, so a record
must come out the same whatever order the same changes arrive in. Every
field is therefore a join that only moves one way:

- status only moves forward: open < expired < complete (a completed
  session is never shown expired or open again);
- payment_status only moves forward: unpaid < no_payment_required < paid;
- async_payment_failed, once seen, stays seen; refunded likewise, and
  amount_refunded only grows;
- descriptions come from the newest change of their kind, ordered by
  Stripe's `created` and then the event id: the session's fields (amount,
  email, metadata, …) from session events, the dispute from dispute events
  (where, within one second, a later stage of the dispute wins);
- a session read from Stripe (fulfilment from the return page) may move the
  status forward, but only fills in descriptions no event has given yet.

`outcome`, what the buyer's page shows, is computed from those facts, so it
is order-independent too.

Charges, refunds and disputes name a PaymentIntent, not a Checkout Session,
and may arrive before the session's own events. Their facts are kept in a
record of the PaymentIntent (`payment_intents/{id}`), which a session event
links to its session; `record_change` says what to write to both records for
any change, and the stores only read and write what it says.

`now` is whatever the store uses for "the time of this write" (Firestore's
server timestamp, or a clock reading); this module only places it.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUS_RANK = {"open": 0, "expired": 1, "complete": 2}
PAYMENT_STATUS_RANK = {"unpaid": 0, "no_payment_required": 1, "paid": 2}
PAID = ("paid", "no_payment_required")
# Between dispute events of the same second, the later stage wins.
DISPUTE_STAGE = {
    "warning_needs_response": 0,
    "needs_response": 0,
    "warning_under_review": 1,
    "under_review": 1,
    "warning_closed": 2,
    "won": 2,
    "lost": 2,
    "prevented": 2,
}

OUTCOMES = ("open", "processing", "paid", "failed", "expired", "refunded")
# Outcomes after which the page stops polling and the status endpoint answers from the store.
TERMINAL = frozenset({"paid", "failed", "expired", "refunded"})

DESCRIPTIVE_FIELDS = ("amount_total", "currency", "customer_email", "metadata", "payment_intent", "livemode")
CHARGE_FIELDS = ("amount_refunded", "refunded", "dispute", "last_dispute_event_id", "last_dispute_event_created")


@dataclass(frozen=True)
class SessionChange:
    """What one checkout.session event, or one read from Stripe, says about a Checkout Session.

    `payment_failed` is True for async_payment_failed, or for a session read
    from Stripe whose delayed payment has failed.
    """

    session: dict
    event_id: str | None = None
    event_type: str | None = None
    created: int | None = None
    payment_failed: bool = False

    @property
    def session_id(self) -> str:
        return self.session["id"]

    @property
    def payment_intent(self) -> str | None:
        return payment_intent_id(self.session.get("payment_intent"))


@dataclass(frozen=True)
class ChargeChange:
    """What one charge.refunded or charge.dispute.* event says about a payment.

    A refund change carries the charge's cumulative `amount_refunded` and
    whether it is now fully `refunded`; a dispute change carries the dispute.
    """

    payment_intent: str
    event_id: str
    event_type: str
    created: int
    amount_refunded: int = 0
    refunded: bool = False
    dispute: dict | None = None


Change = SessionChange | ChargeChange


def payment_intent_id(value) -> str | None:
    if isinstance(value, dict):  # expanded
        value = value.get("id")
    return value or None


def describe(session: dict) -> dict:
    """The fields of a payment record that describe the purchase."""
    details = session.get("customer_details") or {}
    return {
        "amount_total": session.get("amount_total"),
        "currency": session.get("currency"),
        "customer_email": details.get("email") or session.get("customer_email"),
        "metadata": dict(session.get("metadata") or {}),
        "payment_intent": payment_intent_id(session.get("payment_intent")),
        "livemode": bool(session.get("livemode")),
    }


def apply(record: dict | None, change: Change, now) -> dict:
    """The record after `change`; `record` is None for a payment not seen before."""
    if isinstance(change, ChargeChange):
        new = dict(record) if record else _new_intent_record(change.payment_intent)
        facts: dict = {"amount_refunded": change.amount_refunded, "refunded": change.refunded}
        if change.dispute:
            facts |= {
                "dispute": change.dispute,
                "last_dispute_event_id": change.event_id,
                "last_dispute_event_created": change.created,
            }
        _join_charge(new, facts)
    else:
        new = _apply_session(record, change, now)
    new["outcome"] = outcome(new)
    new["updated_at"] = now
    return new


def merge(record: dict, intent_record: dict | None, now) -> dict:
    """`record` with the charge facts its PaymentIntent's record holds (refunds, disputes)."""
    if not intent_record:
        return record
    new = dict(record)
    _join_charge(new, intent_record)
    new["outcome"] = outcome(new)
    if new != record:
        new["updated_at"] = now
    return new


def record_change(payment: dict | None, intent: dict | None, change: Change, now) -> tuple[dict | None, dict | None]:
    """What to write for `change`, given the two records it may touch: (payment, intent); None = no write.

    `payment` is the session's record (for a charge change, the one its
    PaymentIntent is linked to, if any); `intent` the PaymentIntent's. A
    session change always gives a payment record to write.
    """
    if isinstance(change, ChargeChange):
        charged = apply(intent, change, now)
        if payment is None:
            return None, charged  # the session is not known yet: its first event will pick these facts up
        return merge(payment, charged, now), charged

    new_payment = apply(payment, change, now)
    payment_intent = change.payment_intent or new_payment.get("payment_intent")
    if not payment_intent:
        return new_payment, None
    linked = dict(intent) if intent else _new_intent_record(payment_intent)
    if linked.get("session_id") == change.session_id:
        return merge(new_payment, linked, now), None  # already linked: nothing to write to it
    linked["session_id"] = change.session_id
    linked["updated_at"] = now
    return merge(new_payment, linked, now), linked


def outcome(record: dict) -> str:
    """What the buyer's page shows: one of OUTCOMES."""
    if record.get("refunded"):
        return "refunded"
    if record.get("payment_status") in PAID:
        return "paid"
    if record.get("async_payment_failed"):
        return "failed"
    if record.get("status") == "expired":
        return "expired"
    if record.get("status") == "complete":
        return "processing"
    return "open"


def session_outcome(session: dict) -> str:
    """The outcome of a Checkout Session as Stripe returns it (its payment_intent expanded, if known)."""
    return outcome(
        {
            "status": session.get("status"),
            "payment_status": session.get("payment_status"),
            "async_payment_failed": delayed_payment_failed(session),
        }
    )


def delayed_payment_failed(session: dict) -> bool:
    """A completed, unpaid session whose PaymentIntent needs a new payment method: the delayed payment failed."""
    intent = session.get("payment_intent")
    return (
        session.get("status") == "complete"
        and session.get("payment_status") == "unpaid"
        and isinstance(intent, dict)
        and intent.get("status") in ("requires_payment_method", "canceled")
    )


def same(before: dict | None, after: dict) -> bool:
    """True when a write would change nothing but the time it was made."""
    if before is None:
        return False
    ignore = ("updated_at", "paid_at")
    return {k: v for k, v in before.items() if k not in ignore} == {
        k: v for k, v in after.items() if k not in ignore
    } and bool(before.get("paid_at")) == bool(after.get("paid_at"))


def is_terminal(record: dict | None) -> bool:
    """Nothing Stripe can still do changes what the buyer should be shown (polling stops)."""
    return record is not None and outcome(record) in TERMINAL


def _apply_session(record: dict | None, change: SessionChange, now) -> dict:
    session = change.session
    new = (
        dict(record)
        if record
        else {
            "session_id": change.session_id,
            "status": "open",
            "payment_status": "unpaid",
            "created": session.get("created"),
            "paid_at": None,
            "last_event_id": None,
            "last_event_created": None,
            "async_payment_failed": False,
            **_no_charge_facts(),
        }
    )
    new["status"] = _forward(new["status"], session.get("status"), STATUS_RANK)
    new["payment_status"] = _forward(new["payment_status"], session.get("payment_status"), PAYMENT_STATUS_RANK)
    new["async_payment_failed"] = bool(new.get("async_payment_failed")) or change.payment_failed

    if _describes(record, change):
        new.update(describe(session))
        if change.event_id is not None:
            new["last_event_id"] = change.event_id
            new["last_event_created"] = change.created
    if new["payment_status"] in PAID and not new.get("paid_at"):
        new["paid_at"] = now
    return new


def _new_intent_record(payment_intent: str) -> dict:
    return {"payment_intent": payment_intent, "session_id": None, **_no_charge_facts()}


def _no_charge_facts() -> dict:
    return {
        "amount_refunded": 0,
        "refunded": False,
        "dispute": None,
        "last_dispute_event_id": None,
        "last_dispute_event_created": None,
    }


def _join_charge(record: dict, facts: dict) -> None:
    """Join charge facts into `record` in place: refunds only grow, the newest dispute wins."""
    record["amount_refunded"] = max(record.get("amount_refunded") or 0, facts.get("amount_refunded") or 0)
    record["refunded"] = bool(record.get("refunded")) or bool(facts.get("refunded"))
    theirs = facts.get("dispute")
    if theirs is not None and (record.get("dispute") is None or _dispute_order(facts) > _dispute_order(record)):
        record["dispute"] = dict(theirs)
        record["last_dispute_event_id"] = facts["last_dispute_event_id"]
        record["last_dispute_event_created"] = facts["last_dispute_event_created"]
    for field in CHARGE_FIELDS:
        record.setdefault(field, None)


def _dispute_order(facts: dict) -> tuple:
    stage = DISPUTE_STAGE.get(facts["dispute"]["status"], 1)
    return facts["last_dispute_event_created"], stage, facts["last_dispute_event_id"]


def _forward(current: str, seen: str | None, rank: dict) -> str:
    if seen is None or seen not in rank:
        return current
    return seen if rank[seen] > rank.get(current, -1) else current


def _describes(record: dict | None, change: SessionChange) -> bool:
    if record is None or record.get("last_event_id") is None:
        return True
    if change.event_id is None:
        return False
    return (change.created, change.event_id) > (record["last_event_created"], record["last_event_id"])
