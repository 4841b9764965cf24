"""HTTP entry points for Cloud Functions and Cloud Run.

Each deployed function names one of these with --entry-point. `api` serves
all paths from one service (Cloud Run, and local runs with
`functions-framework --target=api`). The work lives in `checkout/` and
`webhook/`; `common.http.endpoint` adds method checks, CORS, JSON errors and
logging around it.
"""

import functions_framework

from checkout.create import create_embedded_session as _create_session
from checkout.status import session_status as _session_status
from common.errors import HttpError
from common.http import endpoint
from webhook.handler import stripe_webhook as _stripe_webhook

_create = endpoint("create_embedded_session", ("POST",), cors=True)(_create_session)
_status = endpoint("session_status", ("GET",), cors=True)(_session_status)
_webhook = endpoint("stripe_webhook", ("POST",))(_stripe_webhook)


def _unknown_path(request, settings):
    raise HttpError(404, f"No endpoint at {request.path}.")


_not_found = endpoint("api", ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))(_unknown_path)

ROUTES = {
    "/api/checkout/embedded-session": _create,
    "/api/checkout/session-status": _status,
    "/webhook": _webhook,
}


@functions_framework.http
def create_embedded_session(request):
    """POST: create an Embedded Checkout session; answers {"client_secret": …}."""
    return _create(request)


@functions_framework.http
def session_status(request):
    """GET ?session_id=…: answers {"status": …, "payment_status": …}."""
    return _status(request)


@functions_framework.http
def stripe_webhook(request):
    """POST from Stripe: verify, store and apply a checkout.session event."""
    return _webhook(request)


@functions_framework.http
def api(request):
    """Every endpoint behind one URL, routed by path."""
    return ROUTES.get(request.path.rstrip("/"), _not_found)(request)
