"""HTTP entry points for Cloud Functions and Cloud Run.

Each deployed function names one of these with --entry-point. `api` serves
all paths from one service (Cloud Run, and local runs with
`functions-framework --target=api`). The work lives in `checkout/` and
`webhook/`; `common.http.endpoint` adds method checks, CORS, JSON errors and
logging around it.

Each handler's module is imported by its first request rather than here, so
a deployed function loads only its own code at cold start (the webhook never
loads checkout's, and the reverse); `api` loads each as its paths are used.
"""

import asyncio  # noqa: F401 - see below
import importlib
import os

import functions_framework

from common import connections
from common.errors import HttpError
from common.http import endpoint

# functions-framework imports this module, then gunicorn forks the worker
# that serves requests. Each new worker starts opening its connection to
# Stripe at once, while its first request is still importing the SDK.
os.register_at_fork(after_in_child=connections.open_ahead)

# asyncio is imported above, before that fork, because both sides need it
# at the same moment: gunicorn's master imports it for its control socket
# right after forking, and the Stripe SDK imports it in the worker's first
# request. Imported once here, the worker inherits it instead of importing
# it a second time while the master does the same on the instance's one CPU
# (~15-30 ms of a cold start).


# Where the endpoints' code lives: imported on first use, not with this module.
HANDLER_MODULES = ("checkout.create", "checkout.status", "webhook.handler")


def _on_first_use(module: str, name: str):
    """`module.name`, imported when first called; importing it again is a dictionary lookup."""

    def handler(request, settings):
        return getattr(importlib.import_module(module), name)(request, settings)

    handler.__name__ = handler.__qualname__ = name
    return handler


_create = endpoint("create_embedded_session", ("POST",), cors=True)(
    _on_first_use("checkout.create", "create_embedded_session")
)
_status = endpoint("session_status", ("GET",), cors=True)(_on_first_use("checkout.status", "session_status"))
_webhook = endpoint("stripe_webhook", ("POST",))(_on_first_use("webhook.handler", "stripe_webhook"))


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
