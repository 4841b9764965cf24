"""GET /api/checkout/session-status?session_id=…: has this checkout been paid?

parse the id → check it is a Checkout Session id of our key's mode → answer
from the payment store if the session is already settled there → otherwise
ask Stripe, record a completed or expired session (fulfilment from the
return page, in case the webhook is late) → answer status and payment_status.

The id is checked before any call, so nothing a client sends can steer the
request to another Stripe path.
"""

from __future__ import annotations

import re

import stripe

from common import logs, ratelimit, stripe_api
from common.errors import HttpError
from common.settings import Settings
from payments import state
from payments.store import get_store

SESSION_ID = re.compile(r"^cs_(test|live)_[A-Za-z0-9]{1,200}$")


def session_status(request, settings: Settings) -> tuple[dict, int]:
    ratelimit.check(request, settings, "status", "RATE_LIMIT_STATUS", settings.rate_limit_status)
    session_id = parse_session_id(request.args.get("session_id"), stripe_api.key_mode(settings))

    record = recorded_payment(request, settings, session_id)
    if state.is_terminal(record):
        return answer(record), 200

    session = retrieve(settings, session_id)
    if session["status"] in ("complete", "expired"):
        fulfil(request, settings, session)
    return answer(session), 200


def parse_session_id(value: str | None, key_mode: str) -> str:
    if not value:
        raise HttpError(400, "Missing query parameter: session_id.")
    match = SESSION_ID.match(value)
    if not match:
        raise HttpError(400, "session_id is not a Checkout Session id (cs_test_… or cs_live_…).")
    if match.group(1) != key_mode:
        raise HttpError(400, f"session_id is a {match.group(1)}-mode session but this server uses {key_mode} mode.")
    return value


def answer(session: dict) -> dict:
    return {"status": session["status"], "payment_status": session["payment_status"]}


def retrieve(settings: Settings, session_id: str) -> dict:
    try:
        return stripe_api.retrieve_checkout_session(settings, session_id)
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            raise HttpError(404, "No such checkout session.") from error
        raise stripe_api.as_http_error(error) from error
    except stripe.StripeError as error:
        raise stripe_api.as_http_error(error) from error


def recorded_payment(request, settings: Settings, session_id: str) -> dict | None:
    """The stored record, or None: a store outage must not stop the buyer's page."""
    try:
        return get_store(settings).get_payment(session_id)
    except Exception as error:
        logs.error_line(request, "session_status", 503, "Payment store read failed; asking Stripe.", error)
        return None


def fulfil(request, settings: Settings, session: dict) -> None:
    """Record a settled session, the same idempotent way the webhook does.

    Stripe advises fulfilling from the return page as well as the webhook, so
    a payment is on record even if the webhook is late or misconfigured. If
    the store is down the buyer still gets an answer; Stripe keeps retrying
    the webhook, which records the payment once the store is back.
    """
    try:
        get_store(settings).record_session(session)
    except Exception as error:
        logs.error_line(request, "session_status", 503, "Could not record the settled session.", error)
