"""The Stripe events the webhook handles, checked and turned into changes of a payment record.

One list for the code, the simulator, the docs, `stripe listen --events …`
and the endpoint registration (deploy/setup.sh prints it): HANDLED_EVENTS.

A signed event is Stripe's, but its fields still decide what is written, so
every field the state machine reads is checked here first. A malformed one
is refused (400) with nothing written; nothing in an event can make the
webhook fail with a 500, which Stripe would retry for days.
"""

from __future__ import annotations

import re

from common.errors import InvalidRequest
from common.stripe_rules import (
    CHARGE_ID,
    CHECKOUT_SESSION_ID,
    DISPUTE_ID,
    EVENT_ID,
    METADATA_KEY_MAX_CHARS,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX_CHARS,
    PAYMENT_INTENT_ID,
    is_id,
)
from payments.state import ChargeChange, SessionChange, delayed_payment_failed

__all__ = ["HANDLED_EVENTS", "ChargeChange", "SessionChange", "change_from_event", "change_from_session"]

SESSION_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
)
REFUND_EVENTS = ("charge.refunded",)
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")

HANDLED_EVENTS = SESSION_EVENTS + REFUND_EVENTS + DISPUTE_EVENTS

# Unix seconds up to 2100: anything later is not a Stripe timestamp.
LATEST_TIME = 4_102_444_800
# Stripe's largest amount: 99,999,999 of the smallest currency unit ($999,999.99).
MAX_AMOUNT = 99_999_999
MAX_EMAIL_CHARS = 512
_CURRENCY = re.compile(r"[a-z]{3}")


def change_from_event(event: dict) -> SessionChange | ChargeChange | None:
    """The change a verified event makes, None for a type we do not handle; InvalidRequest if malformed."""
    event_id, event_type, created = event["id"], event["type"], event["created"]
    if not is_id(EVENT_ID, event_id):
        raise InvalidRequest("Event id is not a Stripe event id.")
    _check(_is_time(created), event_id, "created")
    if event_type not in HANDLED_EVENTS:
        return None
    data = event["data"]["object"]

    if event_type in SESSION_EVENTS:
        return SessionChange(
            session=checked_session(data, event_id),
            event_id=event_id,
            event_type=event_type,
            created=created,
            payment_failed=event_type == "checkout.session.async_payment_failed",
        )
    if event_type in REFUND_EVENTS:
        _check(data.get("object") == "charge" and is_id(CHARGE_ID, data.get("id")), event_id, "data.object")
        intent = _payment_intent(data, event_id)
        amount_refunded, refunded = data.get("amount_refunded"), data.get("refunded")
        _check(_is_amount(amount_refunded), event_id, "amount_refunded")
        _check(isinstance(refunded, bool), event_id, "refunded")
        return (
            ChargeChange(intent, event_id, event_type, created, amount_refunded=amount_refunded, refunded=refunded)
            if intent
            else None
        )

    _check(data.get("object") == "dispute" and is_id(DISPUTE_ID, data.get("id")), event_id, "data.object")
    intent = _payment_intent(data, event_id)
    amount, reason, status = data.get("amount"), data.get("reason"), data.get("status")
    _check(_is_amount(amount), event_id, "amount")
    _check(_is_word(reason), event_id, "reason")
    _check(_is_word(status), event_id, "status")
    dispute = {"id": data["id"], "status": status, "reason": reason, "amount": amount}
    return ChargeChange(intent, event_id, event_type, created, dispute=dispute) if intent else None


def change_from_session(session: dict) -> SessionChange:
    """The change a Checkout Session read from Stripe makes (its payment_intent expanded, if asked for)."""
    return SessionChange(
        session=checked_session(session, None, expanded=True), payment_failed=delayed_payment_failed(session)
    )


def checked_session(session: object, event_id: str | None, expanded: bool = False) -> dict:
    """The Checkout Session, if every field the state machine reads has the type Stripe documents.

    States are checked as words, not against today's values: a state Stripe
    adds later is kept out of the record by the state machine, not refused.
    """
    if not isinstance(session, dict):
        raise InvalidRequest(f"{_where(event_id)} has an invalid data.object.")
    ok = session.get("object") == "checkout.session" and is_id(CHECKOUT_SESSION_ID, session.get("id"))
    _check(ok, event_id, "data.object")
    for field in ("status", "payment_status"):
        _check(session.get(field) is None or _is_word(session[field]), event_id, field)
    currency = session.get("currency")
    _check(
        currency is None or (isinstance(currency, str) and _CURRENCY.fullmatch(currency) is not None),
        event_id,
        "currency",
    )
    _check(session.get("amount_total") is None or _is_amount(session["amount_total"]), event_id, "amount_total")
    _check(session.get("created") is None or _is_time(session["created"]), event_id, "created")
    _check(isinstance(session.get("livemode", False), bool), event_id, "livemode")
    intent = session.get("payment_intent")
    if expanded and isinstance(intent, dict):
        intent = intent.get("id")
    _check(intent is None or is_id(PAYMENT_INTENT_ID, intent), event_id, "payment_intent")
    details = session.get("customer_details")
    _check(details is None or isinstance(details, dict), event_id, "customer_details")
    for email in ((details or {}).get("email"), session.get("customer_email")):
        _check(email is None or _is_text(email, MAX_EMAIL_CHARS), event_id, "customer email")
    _check(_is_metadata(session.get("metadata")), event_id, "metadata")
    return session


def _payment_intent(data: dict, event_id: str) -> str | None:
    intent = data.get("payment_intent")
    _check(intent is None or is_id(PAYMENT_INTENT_ID, intent), event_id, "payment_intent")
    return intent


def _check(ok: bool, event_id: str | None, field: str) -> None:
    if not ok:
        raise InvalidRequest(f"{_where(event_id)} has an invalid {field}.")


def _where(event_id: str | None) -> str:
    return f"Event {event_id}" if event_id else "Checkout Session"


def _is_time(value: object) -> bool:
    return type(value) is int and 0 <= value <= LATEST_TIME


def _is_amount(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_AMOUNT


def _is_text(value: object, limit: int) -> bool:
    if not isinstance(value, str) or len(value) > limit:
        return False
    try:
        value.encode("utf-8")  # lone surrogates cannot be stored or logged
    except UnicodeEncodeError:
        return False
    return True


def _is_word(value: object) -> bool:
    return isinstance(value, str) and _is_text(value, 64) and value.isascii() and value.replace("_", "").isalnum()


def _is_metadata(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, dict) or len(value) > METADATA_MAX_KEYS:
        return False
    return all(
        _is_text(key, METADATA_KEY_MAX_CHARS) and _is_text(item, METADATA_VALUE_MAX_CHARS)
        for key, item in value.items()
    )
