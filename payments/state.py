"""The payment state machine: (record, change) -> record, with no I/O.

Stripe delivers events at least once and in no particular order, so the
record must come out the same whatever order the same changes arrive in:

- status only moves forward: open < expired < complete (a completed
  session is never shown expired or open again);
- payment_status only moves forward: unpaid < no_payment_required < paid;
- the descriptive fields (amount, email, metadata, …) come from the newest
  event, ordered by Stripe's `created` and then the event id, so an older
  event never overwrites what a newer one wrote;
- a session read from Stripe (fulfilment from the return page) may move the
  status forward, but only fills in descriptions no event has given yet.

`now` is whatever the store uses for "the time of this write" (Firestore's
server timestamp, or a clock reading); this module only places it.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUS_RANK = {"open": 0, "expired": 1, "complete": 2}
PAYMENT_STATUS_RANK = {"unpaid": 0, "no_payment_required": 1, "paid": 2}
PAID = ("paid", "no_payment_required")

DESCRIPTIVE_FIELDS = ("amount_total", "currency", "customer_email", "metadata", "payment_intent", "livemode")


@dataclass(frozen=True)
class SessionChange:
    """What one event, or one read from Stripe, says about a Checkout Session."""

    session: dict
    event_id: str | None = None
    event_type: str | None = None
    created: int | None = None

    @property
    def session_id(self) -> str:
        return self.session["id"]


def change_from_event(event: dict) -> SessionChange:
    return SessionChange(
        session=event["data"]["object"], event_id=event["id"], event_type=event["type"], created=event["created"]
    )


def change_from_session(session: dict) -> SessionChange:
    return SessionChange(session=session)


def describe(session: dict) -> dict:
    """The fields of a payment record that describe the purchase."""
    details = session.get("customer_details") or {}
    payment_intent = session.get("payment_intent")
    if isinstance(payment_intent, dict):  # expanded
        payment_intent = payment_intent.get("id")
    return {
        "amount_total": session.get("amount_total"),
        "currency": session.get("currency"),
        "customer_email": details.get("email") or session.get("customer_email"),
        "metadata": dict(session.get("metadata") or {}),
        "payment_intent": payment_intent,
        "livemode": bool(session.get("livemode")),
    }


def apply(record: dict | None, change: SessionChange, now) -> dict:
    """The record after `change`; `record` is None for a session not seen before."""
    session = change.session
    new = dict(record) if record else {
        "session_id": change.session_id,
        "status": "open",
        "payment_status": "unpaid",
        "created": session.get("created"),
        "paid_at": None,
        "last_event_id": None,
        "last_event_created": None,
    }
    new["status"] = _forward(new["status"], session.get("status"), STATUS_RANK)
    new["payment_status"] = _forward(new["payment_status"], session.get("payment_status"), PAYMENT_STATUS_RANK)

    if _describes(record, change):
        new.update(describe(session))
        if change.event_id is not None:
            new["last_event_id"] = change.event_id
            new["last_event_created"] = change.created
    if new["payment_status"] in PAID and not new.get("paid_at"):
        new["paid_at"] = now
    new["updated_at"] = now
    return new


def same(before: dict | None, after: dict) -> bool:
    """True when a write would change nothing but the time it was made."""
    if before is None:
        return False
    ignore = ("updated_at", "paid_at")
    return {k: v for k, v in before.items() if k not in ignore} == {
        k: v for k, v in after.items() if k not in ignore
    } and bool(before.get("paid_at")) == bool(after.get("paid_at"))


def is_terminal(record: dict | None) -> bool:
    """Nothing Stripe can still do changes what the buyer should be shown."""
    if record is None:
        return False
    return record["status"] == "expired" or (record["status"] == "complete" and record["payment_status"] in PAID)


def _forward(current: str, seen: str | None, rank: dict) -> str:
    if seen not in rank:
        return current
    return seen if rank[seen] > rank.get(current, -1) else current


def _describes(record: dict | None, change: SessionChange) -> bool:
    if record is None or record.get("last_event_id") is None:
        return True
    if change.event_id is None:
        return False
    return (change.created, change.event_id) > (record["last_event_created"], record["last_event_id"])
