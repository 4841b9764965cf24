"""The Stripe events the webhook handles, checked and turned into changes of a payment record.

One list for the code, the simulator, the docs, `stripe listen --events …`
and the endpoint registration (deploy/setup.sh prints it): HANDLED_EVENTS.

A signed event is Stripe's, but its fields still decide what is written, so
every field the state machine reads is checked here first. A malformed one
is refused (400) with nothing written; nothing in an event can make the
webhook fail with a 500, which Stripe would retry for days.
"""

from __future__ import annotations

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

SESSION_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
)
REFUND_EVENTS = ("charge.refunded",)
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")

HANDLED_EVENTS = SESSION_EVENTS + REFUND_EVENTS + DISPUTE_EVENTS

# Unix seconds from 2001 to 2100: anything else is not a Stripe timestamp.
_EARLIEST, _LATEST = 978_307_200, 4_102_444_800
# No Checkout payment is anywhere near this many cents.
MAX_AMOUNT = 10**12


def change_from_event(event: dict) -> SessionChange | ChargeChange | None:
    """The change a verified event makes, None for a type we do not handle; InvalidRequest if malformed."""
    event_type = event["type"]
    if event_type not in HANDLED_EVENTS:
        return None
    event_id, created = event["id"], event["created"]
    if not is_id(EVENT_ID, event_id):
        raise InvalidRequest("Event id is not a Stripe event id.")
    _check(_is_time(created), event_id, "created")
    data = event["data"]["object"]

    if event_type in SESSION_EVENTS:
        return SessionChange(
            session=checked_session(data, event_id), event_id=event_id, event_type=event_type, created=created,
            payment_failed=event_type == "checkout.session.async_payment_failed",
        )
    if event_type in REFUND_EVENTS:
        _check(data.get("object") == "charge" and is_id(CHARGE_ID, data.get("id")), event_id, "data.object")
        intent = _payment_intent(data, event_id)
        amount_refunded, refunded = data.get("amount_refunded"), data.get("refunded")
        _check(_is_amount(amount_refunded), event_id, "amount_refunded")
        _check(isinstance(refunded, bool), event_id, "refunded")
        return ChargeChange(intent, event_id, event_type, created, amount_refunded=amount_refunded,
                            refunded=refunded) if intent else None

    _check(data.get("object") == "dispute" and is_id(DISPUTE_ID, data.get("id")), event_id, "data.object")
    intent = _payment_intent(data, event_id)
    amount, reason, status = data.get("amount"), data.get("reason"), data.get("status")
    _check(_is_amount(amount), event_id, "amount")
    _check(_is_word(reason), event_id, "reason")
    _check(_is_word(status), event_id, "status")
    dispute = {"id": data["id"], "status": status, "reason": reason, "amount": amount}
    return ChargeChange(intent, event_id, event_type, created, dispute=dispute) if intent else None


def change_from_session(session: dict) -> SessionChange:
    """The change a Checkout Session read from Stripe makes (its payment_intent may be expanded)."""
    return SessionChange(session=checked_session(session, None), payment_failed=delayed_payment_failed(session))


def checked_session(session: object, event_id: str | None) -> dict:
    """The Checkout Session, if every field the state machine reads has the type Stripe documents."""
    ok = isinstance(session, dict) and session.get("object") == "checkout.session"
    _check(ok and is_id(CHECKOUT_SESSION_ID, session.get("id")), event_id, "data.object")
    assert isinstance(session, dict)
    for field in ("status", "payment_status", "currency"):
        _check(session.get(field) is None or _is_word(session[field]), event_id, field)
    for field in ("amount_total", "created"):
        _check(session.get(field) is None or _is_amount(session[field]), event_id, field)
    _check(isinstance(session.get("livemode", False), bool), event_id, "livemode")
    intent = session.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    _check(intent is None or is_id(PAYMENT_INTENT_ID, intent), event_id, "payment_intent")
    details = session.get("customer_details")
    _check(details is None or isinstance(details, dict), event_id, "customer_details")
    for email in ((details or {}).get("email"), session.get("customer_email")):
        _check(email is None or _is_text(email, 512), event_id, "customer email")
    _check(_is_metadata(session.get("metadata")), event_id, "metadata")
    return session


def _payment_intent(data: dict, event_id: str) -> str | None:
    intent = data.get("payment_intent")
    _check(intent is None or is_id(PAYMENT_INTENT_ID, intent), event_id, "payment_intent")
    return intent


def _check(ok: bool, event_id: str | None, field: str) -> None:
    if not ok:
        where = f"Event {event_id}" if event_id else "Checkout Session"
        raise InvalidRequest(f"{where} has an invalid {field}.")


def _is_time(value: object) -> bool:
    return type(value) is int and _EARLIEST <= value <= _LATEST


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
    return _is_text(value, 64) and value.isascii() and value.replace("_", "").isalnum()  # type: ignore[union-attr]


def _is_metadata(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, dict) or len(value) > METADATA_MAX_KEYS:
        return False
    return all(
        _is_text(key, METADATA_KEY_MAX_CHARS) and _is_text(item, METADATA_VALUE_MAX_CHARS)
        for key, item in value.items()
    )
