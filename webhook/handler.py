"""POST /webhook: Stripe tells us what happened to a payment.

verify the signature → check the event and store it with its change to the
payment record (one atomic write, exactly once per event id) → answer 200. A 2xx tells
Stripe the event is safe with us, so it is sent only after the store has
committed; any failure to store answers 5xx and Stripe retries for days.
"""

from __future__ import annotations

import time

import stripe

from common.errors import InvalidRequest
from common.http import note, parse_json, read_body
from payments import events

MAX_BODY_BYTES = 1024 * 1024
# Stripe's default: signatures older than five minutes are replays. The
# SDK checks only the past; `verify` also refuses a timestamp more than this
# far in the future, which Stripe never sends and which would make a captured
# delivery replayable for as long as its clock is ahead.
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE


async def stripe_webhook(request, context) -> tuple[dict, int]:
    secrets = await context.webhook_secrets()
    payload = await read_body(request, MAX_BODY_BYTES)
    signature = request.headers.get("stripe-signature")
    # The log line tells a refused signature (a wrong secret, which loses payments) from scanners sending none.
    note(request, signature="unverified" if signature else "missing")
    event = verify(payload, signature, secrets)
    note(request, signature="verified", event_type=event["type"])

    change = events.change_from_event(event)
    if change is None:  # a type we do not handle: acknowledged, nothing to do
        note(request, outcome="ignored")
        return {"received": True}, 200
    # Only what the checks passed reaches the log line (what payments are counted by).
    note(request, event_id=change.event_id, **_described(change))
    stored = await context.store().record_event(change)
    note(request, outcome="recorded" if stored else "duplicate")
    return {"received": True, "duplicate": not stored}, 200


def _described(change) -> dict:
    """The session a checked event is about and its payment status, for the log line."""
    if isinstance(change, events.SessionChange):
        return {"session_id": change.session_id, "payment_status": change.session.get("payment_status")}
    return {"payment_intent": change.payment_intent}


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
        reason = failure.user_message if failure is not None else "no secret to check it with"
        raise InvalidRequest(f"Stripe-Signature verification failed: {reason}")
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
