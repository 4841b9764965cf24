"""POST /webhook: Stripe tells us what happened to a Checkout Session.

verify the signature → store the event and apply it to the payment record
(one transaction, exactly once per event id) → answer 200. A 2xx tells
Stripe the event is safe with us, so it is sent only after the store has
committed; any failure to store answers 5xx and Stripe retries for days.
"""

from __future__ import annotations

import json
import re

import stripe

from common.errors import HttpError
from common.http import read_body
from common.settings import Settings
from payments import state
from payments.store import get_store

MAX_BODY_BYTES = 1024 * 1024
# Stripe's default: signatures older than five minutes are replays.
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE
SESSION_ID = re.compile(r"^cs_(test|live)_[A-Za-z0-9]+$")


def stripe_webhook(request, settings: Settings) -> tuple[dict, int]:
    secrets = settings.stripe_webhook_secrets()
    payload = read_body(request, MAX_BODY_BYTES)
    event = verify(payload, request.headers.get("Stripe-Signature"), secrets)

    if event["type"] not in state.SESSION_EVENTS:
        return {"received": True}, 200
    check_session_event(event)
    stored = get_store(settings).record_event(event)
    return {"received": True, "duplicate": not stored}, 200


def verify(payload: bytes, signature: str | None, secrets: tuple[str, ...]) -> dict:
    """The event, if any accepted secret signed this exact payload recently.

    Several secrets are tried so an endpoint secret can be rolled: Stripe
    signs with both the old and the new one while the old one expires.
    """
    if not signature:
        raise HttpError(400, "Missing Stripe-Signature header.")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "Webhook body is not UTF-8 text.")

    failure = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, TOLERANCE_SECONDS)
            break
        except stripe.SignatureVerificationError as error:
            failure = error
    else:
        raise HttpError(400, f"Stripe-Signature verification failed: {failure.user_message}")

    try:
        event = json.loads(text)
    except ValueError:
        raise HttpError(400, "Webhook body is not JSON.")
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise HttpError(400, "Webhook body is not a Stripe event.")
    return event


def check_session_event(event: dict) -> None:
    session = event["data"]["object"]
    if session.get("object") != "checkout.session" or not SESSION_ID.match(str(session.get("id", ""))):
        raise HttpError(400, f"{event['type']} event does not carry a Checkout Session.")
