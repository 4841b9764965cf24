"""GET /api/checkout/session-status?session_id=…: has this checkout been paid?

parse the id → check it is a Checkout Session id of our key's mode → ask
Stripe → answer status and payment_status. The id is checked before any call
so nothing a client sends can steer the request to another Stripe path.
"""

from __future__ import annotations

import re

import stripe

from common import ratelimit, stripe_api
from common.errors import HttpError
from common.settings import Settings

SESSION_ID = re.compile(r"^cs_(test|live)_[A-Za-z0-9]{1,200}$")


def session_status(request, settings: Settings) -> tuple[dict, int]:
    ratelimit.check(request, settings, "status", "RATE_LIMIT_STATUS", settings.rate_limit_status)
    session_id = parse_session_id(request.args.get("session_id"), stripe_api.key_mode(settings))

    try:
        session = stripe_api.get_client(settings).v1.checkout.sessions.retrieve(session_id)
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            raise HttpError(404, "No such checkout session.") from error
        raise stripe_api.as_http_error(error) from error
    except stripe.StripeError as error:
        raise stripe_api.as_http_error(error) from error
    return {"status": session.status, "payment_status": session.payment_status}, 200


def parse_session_id(value: str | None, key_mode: str) -> str:
    if not value:
        raise HttpError(400, "Missing query parameter: session_id.")
    match = SESSION_ID.match(value)
    if not match:
        raise HttpError(400, "session_id is not a Checkout Session id (cs_test_… or cs_live_…).")
    if match.group(1) != key_mode:
        raise HttpError(400, f"session_id is a {match.group(1)}-mode session but this server uses {key_mode} mode.")
    return value
