"""HTTP entry points for Cloud Run functions.

Each deployed function names one of these with --function; `api` serves
every path from one service (Cloud Run, and local runs with
`functions-framework --target=api`). The work lives in `checkout/` and
`webhook/`; `common.http.endpoint` adds method and origin checks, CORS,
JSON errors and the log line around it. What requests share (settings,
Stripe client, store, limiter) lives in one context per process. The
server's own limits on a request's head are set here, while gunicorn's
master loads this file (`common.serving`).
"""

import functions_framework.aio

import common.coldstart  # noqa: F401 - first, before anything imports stripe: see its docstring
from checkout import create, status
from common import logs
from common.context import Context
from common.http import HttpError, endpoint
from common.serving import bound_request_heads
from webhook import handler

# This module is each process's entry point, so the one place that sends
# Python's logging and warnings (ours and the libraries') through the JSON
# writer; a Context stays free of process-wide effects.
logs.install()
bound_request_heads()
context = Context()


async def _no_endpoint(request, context):
    raise HttpError(404, "No endpoint at this path.")


ROUTES = {
    "/api/checkout/embedded-session": endpoint(
        "create_embedded_session", create.create_embedded_session, context, ("POST",), cors=True
    ),
    "/api/checkout/session-status": endpoint("session_status", status.session_status, context, ("GET",), cors=True),
    "/webhook": endpoint("stripe_webhook", handler.stripe_webhook, context, ("POST",)),
}
NO_ENDPOINT = endpoint("api", _no_endpoint, context, ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))


@functions_framework.aio.http
async def create_embedded_session(request):
    """POST: create an Embedded Checkout session; answers {"client_secret": …}."""
    return await ROUTES["/api/checkout/embedded-session"](request)


@functions_framework.aio.http
async def session_status(request):
    """GET ?session_id=…: answers {"status": …, "payment_status": …}."""
    return await ROUTES["/api/checkout/session-status"](request)


@functions_framework.aio.http
async def stripe_webhook(request):
    """POST from Stripe: verify, store and apply a checkout.session event."""
    return await ROUTES["/webhook"](request)


@functions_framework.aio.http
async def api(request):
    """Every endpoint behind one URL, routed by path."""
    return await ROUTES.get(request.url.path.rstrip("/"), NO_ENDPOINT)(request)
