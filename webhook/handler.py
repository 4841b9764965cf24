"""POST /webhook: Stripe tells us what happened to a payment.

verify the signature → check the event and store it with its change to the
payment record (one transaction, exactly once per event id) → answer 200. A 2xx tells
Stripe the event is safe with us, so it is sent only after the store has
committed; any failure to store answers 5xx and Stripe retries for days.
"""

from __future__ import annotations

import json

import stripe

from common.errors import InvalidRequest
from common.http import note, read_body
from payments import events

MAX_BODY_BYTES = 1024 * 1024
# Stripe's default: signatures older than five minutes are replays.
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE


async def stripe_webhook(request, context) -> tuple[dict, int]:
    secrets = await context.webhook_secrets()
    payload = await read_body(request, MAX_BODY_BYTES)
    event = verify(payload, request.headers.get("stripe-signature"), secrets)
    note(request, event_id=event["id"], event_type=event["type"])

    change = events.change_from_event(event)
    if change is None:  # a type we do not handle: acknowledged, nothing to do
        return {"received": True}, 200
    stored = await context.store().record_event(event, change)
    return {"received": True, "duplicate": not stored}, 200


def verify(payload: bytes, signature: str | None, secrets: tuple[str, ...]) -> dict:
    """The event, if any accepted secret signed this exact payload recently.

    Several secrets are tried so an endpoint secret can be rolled: Stripe
    signs with both the old and the new one while the old one expires.
    """
    if not signature:
        raise InvalidRequest("Missing Stripe-Signature header.")
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

    try:
        event = json.loads(text)
    except ValueError:
        raise InvalidRequest("Webhook body is not JSON.") from None
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidRequest("Webhook body is not a Stripe event.")
    return event
