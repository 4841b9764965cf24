"""GET /api/checkout/session-status?session_id=…: has this checkout been paid?

verify App Check (when on for status) → count the client against its rate →
parse the id → check it is a Checkout Session id of our key's mode → answer
from the payment store if the payment is settled there (paid, failed,
expired or refunded) → otherwise ask Stripe, record a completed or expired
session (fulfilment from the return page, in case the webhook is late) →
answer status and payment_status (Stripe's words) and the outcome the page
shows (payments.state.OUTCOMES).

The id is checked before any call, so nothing a client sends can steer the
request to another Stripe path.
"""

from __future__ import annotations

from common import logs
from common.errors import InvalidRequest
from common.http import client_ip, note, quiet
from common.stripe_rules import CHECKOUT_SESSION_ID
from payments import events, state
from payments.store import StoreUnavailable


async def session_status(request, context) -> tuple[dict, int]:
    settings = context.settings
    if settings.app_check_on_status:
        await context.app_check().verify(request)
    # Always fail open: a buyer waiting for their result is never refused because the counts are unreachable.
    await context.limiter().check(
        "session_status", settings.rate_limit_status, client_ip(request, settings.trusted_proxy_hops), fail_open=True
    )
    stripe = await context.stripe()
    session_id = parse_session_id(request.query_params.get("session_id"), stripe.mode)
    note(request, session_id=session_id)

    record = await recorded_payment(request, context, session_id)
    if record is not None and state.is_terminal(record):
        note(request, outcome=record["outcome"], answered_from="store")
        return answer(record, record["outcome"]), 200

    session = await stripe.retrieve_checkout_session(session_id)
    if session["status"] in ("complete", "expired"):
        record = await fulfil(request, context, session)
    outcome = record["outcome"] if record else state.session_outcome(session)
    note(request, outcome=outcome, answered_from="stripe")
    if outcome not in state.TERMINAL:
        # The page polls every few seconds until the outcome is final: one line per poll
        # would be noise (and log volume); the final answer and every refusal are logged.
        quiet(request)
    return answer(session, outcome), 200


def parse_session_id(value: str | None, key_mode: str) -> str:
    if not value:
        raise InvalidRequest("Missing query parameter: session_id.")
    match = CHECKOUT_SESSION_ID.fullmatch(value)
    if not match:
        raise InvalidRequest("session_id is not a Checkout Session id (cs_test_… or cs_live_…).")
    if match.group(1) != key_mode:
        raise InvalidRequest(f"session_id is a {match.group(1)}-mode session but this server uses {key_mode} mode.")
    return value


def answer(session: dict, outcome: str) -> dict:
    return {"status": session["status"], "payment_status": session["payment_status"], "outcome": outcome}


async def recorded_payment(request, context, session_id: str) -> dict | None:
    """The stored record, or None: a store outage must not stop the buyer's page."""
    try:
        return await context.store().get_payment(session_id)
    except StoreUnavailable as error:
        _store_failed(request, "Payment store read failed; asking Stripe.", error)
        return None


async def fulfil(request, context, session: dict) -> dict | None:
    """Record a settled session, the same idempotent way the webhook does.

    Stripe advises fulfilling from the return page as well as the webhook, so
    a payment is on record even if the webhook is late or misconfigured. If
    the store is down the buyer still gets an answer; Stripe keeps retrying
    the webhook, which records the payment once the store is back.
    Returns the record, which also knows refunds the session cannot show.
    """
    try:
        return await context.store().record_session(events.change_from_session(session))
    except StoreUnavailable as error:
        _store_failed(request, "Could not record the settled session.", error)
    except InvalidRequest as error:  # Stripe's answer, not the buyer's request: logged, not refused
        _store_failed(request, "Stripe's session did not pass our checks; not recorded.", error)
    return None


def _store_failed(request, message: str, error: Exception) -> None:
    logs.write(
        "ERROR",
        message,
        endpoint="session_status",
        error=error.__class__.__name__,
        **logs.trace_fields(request.headers),
    )
