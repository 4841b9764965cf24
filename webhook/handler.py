"""POST /webhook: Stripe tells us what happened to a Checkout Session.

verify the signature → store the event and apply it to the payment record
(one transaction, exactly once per event id) → answer 200. A 2xx tells
Stripe the event is safe with us, so it is sent only after the store has
committed; any failure to store answers 5xx and Stripe retries for days.
"""

from __future__ import annotations

import time

import stripe

from common.errors import InvalidRequest
from common.http import note, parse_json, read_body
from common.stripe_rules import CHECKOUT_SESSION_ID, is_id
from payments.events import HANDLED_EVENTS

MAX_BODY_BYTES = 1024 * 1024
# Stripe's default: signatures older than five minutes are replays. The
# SDK checks only the past; `verify` also refuses a timestamp more than this
# far in the future, which Stripe never sends and which would make a captured
# delivery replayable for as long as its clock is ahead.
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE


async def stripe_webhook(request, context) -> tuple[dict, int]:
    secrets = await context.webhook_secrets()
    payload = await read_body(request, MAX_BODY_BYTES)
    event = verify(payload, request.headers.get("stripe-signature"), secrets)
    note(request, event_id=event["id"], event_type=event["type"])

    if event["type"] not in HANDLED_EVENTS:
        return {"received": True}, 200
    check_session_event(event)
    stored = await context.store().record_event(event)
    return {"received": True, "duplicate": not stored}, 200


def verify(payload: bytes, signature: str | None, secrets: tuple[str, ...]) -> dict:
    """The event, if any accepted secret signed this exact payload within the tolerance of now.

    Several secrets are tried so an endpoint secret can be rolled: Stripe
    signs with both the old and the new one while the old one expires.
    """
    if not signature:
        raise InvalidRequest("Missing Stripe-Signature header.")
    if not (signature.isascii() and signature.isprintable()):
        # Stripe's header is ASCII; the SDK's constant-time comparison raises on anything else.
        raise InvalidRequest("Stripe-Signature header is malformed.")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("Webhook body is not UTF-8 text.") from None

    failure = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, TOLERANCE_SECONDS)
            break
        except stripe.SignatureVerificationError as error:
            failure = error
    else:
        raise InvalidRequest(f"Stripe-Signature verification failed: {failure.user_message}")
    if signed_at(signature) > time.time() + TOLERANCE_SECONDS:
        raise InvalidRequest("Stripe-Signature verification failed: Timestamp is in the future, beyond the tolerance.")

    event = parse_json(payload, "Webhook body")
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and event["type"]
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidRequest("Webhook body is not a Stripe event.")
    return event


def signed_at(signature: str) -> int:
    """The header's timestamp, read as the SDK reads it (the first `t=`) once the SDK has accepted the header."""
    return int(next(item.split("=", 2)[1] for item in signature.split(",") if item.split("=", 2)[0] == "t"))


def check_session_event(event: dict) -> None:
    session = event["data"]["object"]
    if session.get("object") != "checkout.session" or not is_id(CHECKOUT_SESSION_ID, session.get("id")):
        raise InvalidRequest(f"{event['type']} event does not carry a Checkout Session.")
