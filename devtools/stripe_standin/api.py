"""Stripe's API as the stand-in serves it: ``/v1/...`` requests in, Stripe's answers out.

Every request is logged, then waits out the injected latency (without the
lock, so it holds up no other request), then meets an injected fault if
one is queued, then authentication and the API version, and only then its
endpoint, under the store's lock. POSTs with an ``Idempotency-Key`` are
replayed per API key and refused with different parameters, as on Stripe.

Endpoints:

- Checkout Sessions: create, list, retrieve, expire.
- Events: list (with Stripe's paging and filters) and retrieve.
- PaymentIntents, Charges, Refunds, Disputes: retrieve.

Objects are invisible to keys of the other mode (test or live).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from stripe.params import (
    ChargeRetrieveParams,
    DisputeRetrieveParams,
    EventListParams,
    EventRetrieveParams,
    PaymentIntentRetrieveParams,
    RefundRetrieveParams,
)
from stripe.params.checkout import SessionExpireParams, SessionListParams, SessionRetrieveParams

from devtools.stripe_standin import listing, simulation
from devtools.stripe_standin.errors import StripeError, _fault_error, _mask_key, _no_such
from devtools.stripe_standin.objects import _random_id, _SessionRecord, build_line_items, build_session
from devtools.stripe_standin.params import DEFAULT_API_VERSION, check_params, decode_form, validate_create_params
from devtools.stripe_standin.state import LoggedRequest, Store
from devtools.stripe_standin.transport import _json_bytes, _Reply

# Only these request headers are kept in the request log; never Authorization.
LOGGED_HEADERS = (
    "Stripe-Version",
    "Idempotency-Key",
    "Stripe-Account",
    "Stripe-Context",
    "Content-Type",
)
# Stripe keeps events for 30 days; older ones are neither listed nor retrievable.
EVENT_RETENTION_SECONDS = 30 * 24 * 60 * 60

_API_KEY_RE = re.compile(r"^(?:sk|rk)_(test|live)_[A-Za-z0-9_]+$")
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:\.[a-z_]+)?$")


class _ApiCall(NamedTuple):
    """An authenticated API request on its way to an endpoint."""

    method: str
    path: str
    params: dict[str, Any]
    api_key: str
    livemode: bool
    api_version: str
    request_id: str
    idempotency_key: str | None


class _IdempotentResult(NamedTuple):
    method: str
    path: str
    params: dict[str, Any]
    reply: _Reply
    request_id: str


def handle(store: Store, method: str, path: str, query: str, headers: Any, body: bytes) -> _Reply:
    """Answer one API request; ``headers`` needs a case-insensitive ``get``."""
    request_id = _random_id("req_", 14)
    api_version = headers.get("Stripe-Version") or DEFAULT_API_VERSION
    reply_headers = {"Request-Id": request_id, "Stripe-Version": api_version}
    idempotency_key = headers.get("Idempotency-Key") if method == "POST" else None
    if idempotency_key:
        reply_headers["Idempotency-Key"] = idempotency_key
    try:
        params = decode_form(query if method == "GET" else body.decode("utf-8"))
    except (StripeError, UnicodeDecodeError):
        params = None
    kept = {name: headers.get(name) for name in LOGGED_HEADERS if headers.get(name) is not None}
    with store.lock:
        store.log(LoggedRequest(method, path, params if params is not None else {}, kept))
    if store.latency > 0:
        time.sleep(store.latency)
    try:
        _raise_injected_fault(store, headers.get("Authorization"))
        if params is None:
            raise StripeError(400, "The request body could not be decoded as a form.")
        api_key, livemode = _authenticate(headers.get("Authorization"))
        if not _VERSION_RE.match(api_version):
            raise StripeError(400, f"Invalid Stripe API version: {api_version}")
        call = _ApiCall(method, path, params, api_key, livemode, api_version, request_id, idempotency_key)
        with store.lock:
            reply = _route(store, call)
    except StripeError as error:
        reply_headers.update(error.headers)
        return _Reply(error.status, _json_bytes(error.to_dict()), reply_headers)
    reply.headers.update(reply_headers)
    return reply


def _raise_injected_fault(store: Store, authorization: str | None) -> None:
    with store.lock:
        if not store.faults:
            return
        fault = store.faults.popleft()
    raise _fault_error(fault, authorization)


def _route(store: Store, call: _ApiCall) -> _Reply:
    key = call.idempotency_key if call.method == "POST" else None
    if key:
        stored = store.idempotency.get((call.api_key, key))
        if stored is not None:
            return _replay(stored, call)
    reply = _dispatch(store, call)
    if key and reply.status == 200:  # failed validation is not kept, as on Stripe
        store.remember(
            (call.api_key, key),
            _IdempotentResult(call.method, call.path, call.params, _Reply(200, reply.body, {}), call.request_id),
        )
    return reply


def _dispatch(store: Store, call: _ApiCall) -> _Reply:
    for method, pattern, endpoint in _ROUTES:
        match = pattern.match(call.path)
        if match and call.method == method:
            return _Reply(200, _json_bytes(endpoint(store, call, *match.groups())), {})
    raise StripeError(
        404,
        f"Unrecognized request URL ({call.method}: {call.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )


# -- Checkout Sessions ------------------------------------------------------


def _create_session(store: Store, call: _ApiCall) -> dict[str, Any]:
    now = store.now()
    checked = validate_create_params(call.params, call.api_version, now)
    expand = _expand_list(checked, ("line_items",))
    line_items = build_line_items(checked, call.livemode, now)
    session = build_session(checked, line_items, call.livemode, now)
    record = _SessionRecord(session, call.api_version, line_items)
    store.sessions[session["id"]] = record
    return record.render(call.api_version, expand)


def _list_sessions(store: Store, call: _ApiCall) -> dict[str, Any]:
    params = check_params(call.params, SessionListParams) or {}
    _expand_list(params, ())
    created = listing.created_filter(params.get("created"))
    equal = {
        field: params[field]
        for field in ("status", "customer", "payment_intent", "payment_link", "subscription")
        if field in params
    }
    email = (params.get("customer_details") or {}).get("email")

    def keep(session: dict[str, Any]) -> bool:
        return (
            session["livemode"] == call.livemode
            and all(session.get(field) == value for field, value in equal.items())
            and (created is None or created(session["created"]))
            and (email is None or (session["customer_details"] or {}).get("email") == email)
        )

    ordered = listing.newest_first(record.data for record in store.sessions.values())
    return listing.page(
        ordered,
        keep,
        params,
        "/v1/checkout/sessions",
        "checkout.session",
        render=lambda session: store.sessions[session["id"]].render(call.api_version),
    )


def _retrieve_session(store: Store, call: _ApiCall, session_id: str) -> dict[str, Any]:
    expand = _expand_list(check_params(call.params, SessionRetrieveParams) or {}, ("line_items", "payment_intent"))
    session = _visible_session(store, session_id, call.livemode).render(call.api_version, expand)
    if "payment_intent" in expand and session.get("payment_intent"):
        session["payment_intent"] = copy.deepcopy(store.objects[session["payment_intent"]])
    return session


def _expire_session(store: Store, call: _ApiCall, session_id: str) -> dict[str, Any]:
    expand = _expand_list(check_params(call.params, SessionExpireParams) or {}, ("line_items",))
    record = _visible_session(store, session_id, call.livemode)
    status = record.data["status"]
    if status != "open":
        raise StripeError(
            400,
            f'Only Checkout Sessions with a status in ["open"] can be expired. '
            f'This Checkout Session has a status of "{status}".',
            param="session",
        )
    simulation.expire(store, record, call.request_id, call.idempotency_key)
    return record.render(call.api_version, expand)


def _visible_session(store: Store, session_id: str, livemode: bool) -> _SessionRecord:
    record = store.sessions.get(session_id)
    if record is None or record.data["livemode"] != livemode:
        raise _no_such("checkout.session", session_id, "session", status=404)
    return record


# -- Events -----------------------------------------------------------------


def _list_events(store: Store, call: _ApiCall) -> dict[str, Any]:
    params = check_params(call.params, EventListParams) or {}
    _expand_list(params, ())
    created = listing.created_filter(params.get("created"))
    type_matches = listing.event_type_filter(params)
    delivered = params.get("delivery_success")
    oldest = store.now() - EVENT_RETENTION_SECONDS

    def keep(event: dict[str, Any]) -> bool:
        return (
            event["livemode"] == call.livemode
            and event["created"] >= oldest
            and (created is None or created(event["created"]))
            and (type_matches is None or type_matches(event["type"]))
            # The stand-in never delivers webhooks itself, so every event is still pending.
            and (delivered is None or delivered == (event["pending_webhooks"] == 0))
        )

    return listing.page(listing.newest_first(store.events), keep, params, "/v1/events", "event")


def _retrieve_event(store: Store, call: _ApiCall, event_id: str) -> dict[str, Any]:
    _expand_list(check_params(call.params, EventRetrieveParams) or {}, ())
    event = store.events_by_id.get(event_id)
    if event is None or event["livemode"] != call.livemode or event["created"] < store.now() - EVENT_RETENTION_SECONDS:
        raise _no_such("event", event_id, "id", status=404)
    return event


# -- PaymentIntents, Charges, Refunds, Disputes -----------------------------


def _retriever(object_type: str, params_type: type, param: str) -> Callable[..., dict[str, Any]]:
    def retrieve(store: Store, call: _ApiCall, object_id: str) -> dict[str, Any]:
        _expand_list(check_params(call.params, params_type) or {}, ())
        found = store.objects.get(object_id)
        # Refunds carry no livemode of their own; their payment does.
        if found is None or found["object"] != object_type or store.payments[object_id].livemode != call.livemode:
            raise _no_such(object_type, object_id, param, status=404)
        return found

    return retrieve


_ROUTES: list[tuple[str, re.Pattern[str], Callable[..., dict[str, Any]]]] = [
    ("POST", re.compile(r"^/v1/checkout/sessions$"), _create_session),
    ("GET", re.compile(r"^/v1/checkout/sessions$"), _list_sessions),
    ("GET", re.compile(r"^/v1/checkout/sessions/([^/]+)$"), _retrieve_session),
    ("POST", re.compile(r"^/v1/checkout/sessions/([^/]+)/expire$"), _expire_session),
    ("GET", re.compile(r"^/v1/events$"), _list_events),
    ("GET", re.compile(r"^/v1/events/([^/]+)$"), _retrieve_event),
    (
        "GET",
        re.compile(r"^/v1/payment_intents/([^/]+)$"),
        _retriever("payment_intent", PaymentIntentRetrieveParams, "intent"),
    ),
    ("GET", re.compile(r"^/v1/charges/([^/]+)$"), _retriever("charge", ChargeRetrieveParams, "charge")),
    ("GET", re.compile(r"^/v1/refunds/([^/]+)$"), _retriever("refund", RefundRetrieveParams, "refund")),
    ("GET", re.compile(r"^/v1/disputes/([^/]+)$"), _retriever("dispute", DisputeRetrieveParams, "dispute")),
]


# -- helpers ----------------------------------------------------------------


def _authenticate(authorization: str | None) -> tuple[str, bool]:
    """Return (api key, livemode) or raise Stripe's 401."""
    if not authorization or not authorization.startswith("Bearer ") or not authorization[7:].strip():
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
            "or we can help at https://support.stripe.com/.",
            type="authentication_error",
        )
    api_key = authorization[7:].strip()
    match = _API_KEY_RE.match(api_key)
    if not match:
        raise StripeError(401, f"Invalid API Key provided: {_mask_key(api_key)}", type="authentication_error")
    return api_key, match.group(1) == "live"


def _replay(stored: _IdempotentResult, call: _ApiCall) -> _Reply:
    if (stored.method, stored.path, stored.params) != (call.method, call.path, call.params):
        raise StripeError(
            400,
            "Keys for idempotent requests can only be used with the same parameters they "
            f"were first used with. Try using a key other than '{call.idempotency_key}' if you "
            "meant to execute a different request.",
            type="idempotency_error",
        )
    headers = {"Idempotent-Replayed": "true", "Original-Request": stored.request_id}
    return _Reply(stored.reply.status, stored.reply.body, headers)


def _expand_list(params: dict[str, Any], expandable: tuple[str, ...]) -> tuple[str, ...]:
    expand = tuple(params.get("expand", ()))
    for field in expand:
        if field not in expandable:
            can = f"only expand {', '.join(expandable)}" if expandable else "expand nothing"
            raise StripeError(
                400,
                f"This property cannot be expanded ({field}). The stand-in can {can} here.",
                param="expand",
            )
    return expand
