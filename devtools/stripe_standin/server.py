"""StripeStandin: the stand-in's state, its Stripe API endpoints and its controls.

This is where a request becomes an answer: authentication and API
versions, the Checkout Sessions endpoints, idempotency keys (replayed per
API key, refused with different parameters), injected faults and latency,
and the request log. It also holds the simulation of what happens on
Stripe's side (completion, asynchronous payment results, expiry) and the
``/_standin/`` admin endpoints that let other processes drive it. All state
sits behind one lock here; parameters, objects, errors and sockets are
handled by the sibling modules.
"""

from __future__ import annotations

import collections
import copy
import json
import re
import threading
import time
import urllib.parse
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from stripe.params.checkout import SessionExpireParams, SessionListParams, SessionRetrieveParams

from devtools.stripe_standin.errors import (
    FAULT_STATUSES,
    StripeError,
    _Fault,
    _fault_error,
    _mask_key,
    _no_such,
)
from devtools.stripe_standin.objects import (
    _random_id,
    _SessionRecord,
    build_event,
    build_line_items,
    build_session,
)
from devtools.stripe_standin.params import (
    DEFAULT_API_VERSION,
    check_params,
    decode_form,
    validate_create_params,
)
from devtools.stripe_standin.transport import (
    _admin_error,
    _json_bytes,
    _Reply,
    _StandinServer,
    make_app,
)

# Only these request headers are kept in the request log; never Authorization.
LOGGED_HEADERS = (
    "Stripe-Version",
    "Idempotency-Key",
    "Stripe-Account",
    "Stripe-Context",
    "Content-Type",
)

_API_KEY_RE = re.compile(r"^(?:sk|rk)_(test|live)_[A-Za-z0-9_]+$")
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:\.[a-z_]+)?$")

_SESSIONS_PATH = "/v1/checkout/sessions"
_SESSION_PATH_RE = re.compile(r"^/v1/checkout/sessions/([^/]+)$")
_EXPIRE_PATH_RE = re.compile(r"^/v1/checkout/sessions/([^/]+)/expire$")
_ADMIN_SESSION_RE = re.compile(
    r"^/_standin/sessions/([^/]+)(?:/(complete|async_payment|expire))?$"
)
_ADMIN_EVENT_RE = re.compile(r"^/_standin/events/([^/]+)$")


class LoggedRequest(NamedTuple):
    """One API request as received (Authorization is never recorded)."""

    method: str
    path: str
    params: Dict[str, Any]
    headers: Dict[str, str]


class _ApiCall(NamedTuple):
    """An authenticated API request on its way to an endpoint."""

    method: str
    path: str
    params: Dict[str, Any]
    api_key: str
    livemode: bool
    api_version: str
    request_id: str
    idempotency_key: Optional[str]


class _IdempotentResult(NamedTuple):
    method: str
    path: str
    params: Dict[str, Any]
    reply: _Reply
    request_id: str


class StripeStandin:
    """An in-process HTTP server that answers like Stripe's Checkout API.

    All state sits behind one lock, so the server threads and test code can
    use it concurrently. Methods that simulate what happens on Stripe's side
    (``complete``, ``async_payment``, ``expire``) return the events Stripe
    would send to a webhook endpoint.
    """

    def __init__(
        self, latency: float = 0.0, *, log_limit: int = 10_000, idempotency_limit: int = 100_000
    ):
        """``log_limit`` and ``idempotency_limit`` bound memory in long benchmark runs."""
        self._lock = threading.Lock()
        self._latency = float(latency)
        self._log_limit = log_limit
        self._idempotency_limit = idempotency_limit
        self._server: Optional[_StandinServer] = None
        self._thread: Optional[threading.Thread] = None
        self._base_url: Optional[str] = None
        self._clear_state()

    def _clear_state(self) -> None:
        self._sessions: Dict[str, _SessionRecord] = {}
        self._events: List[Dict[str, Any]] = []
        self._events_by_id: Dict[str, Dict[str, Any]] = {}
        self._idempotency: "collections.OrderedDict[Tuple[str, str], _IdempotentResult]" = (
            collections.OrderedDict()
        )
        self._faults: collections.deque = collections.deque()
        self._requests: collections.deque = collections.deque(maxlen=self._log_limit)
        self._request_count = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving in a background thread and return the base URL."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._server = _StandinServer(host, port, make_app(self))
        bound_host, bound_port = self._server.server_address[:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="stripe-standin",
            daemon=True,
        )
        self._thread.start()
        return self._base_url

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> "StripeStandin":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the stand-in has not been started")
        return self._base_url

    # -- controls ----------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds of delay added before every API response."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        seconds = float(seconds)
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._latency = seconds

    def fail_next(
        self, count: int = 1, status: int = 500, *, should_retry: Optional[bool] = None
    ) -> None:
        """Make the next ``count`` API requests fail the way Stripe fails.

        Any status in ``FAULTS`` works: 500 is an api_error, 401 an
        authentication_error, 429 a rate_limit_error, and so on. 5xx answers
        carry ``Stripe-Should-Retry: true`` (the request never ran, so a
        retry is safe); 429 carries ``Retry-After: 1`` and no retry advice,
        as Stripe's rate limiter does. ``should_retry`` forces the header
        either way. Injected failures never touch state or the idempotency
        store, so an SDK retry with the same key goes through.
        """
        if status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {FAULT_STATUSES}")
        if count < 0:
            raise ValueError("count cannot be negative")
        with self._lock:
            self._faults.extend([_Fault(status, should_retry)] * count)

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def reset(self) -> None:
        """Start over: no sessions, events, idempotency keys, faults, latency or logged requests."""
        with self._lock:
            self._clear_state()
        self._latency = 0.0

    @property
    def requests(self) -> List[LoggedRequest]:
        """The most recent API requests, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many API requests arrived since start or the last reset."""
        with self._lock:
            return self._request_count

    # -- state inspection and simulation -----------------------------------

    def session(self, session_id: str) -> Dict[str, Any]:
        """A copy of a stored session, in the API version it was created with."""
        with self._lock:
            return self._record(session_id).snapshot()

    @property
    def sessions(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [record.snapshot() for record in self._sessions.values()]

    @property
    def events(self) -> List[Dict[str, Any]]:
        """Every event generated so far, oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._events)

    def event(self, event_id: str) -> Dict[str, Any]:
        with self._lock:
            try:
                return copy.deepcopy(self._events_by_id[event_id])
            except KeyError:
                raise KeyError(f"No such event: '{event_id}'") from None

    def complete(
        self,
        session_id: str,
        payment_status: str = "paid",
        customer_email: Optional[str] = None,
        name: str = "Jenny Rosen",
    ) -> List[Dict[str, Any]]:
        """The customer finished Checkout; returns [checkout.session.completed].

        ``payment_status="unpaid"`` models a delayed payment method (e.g. a
        bank debit) whose result arrives later via ``async_payment``. The
        email defaults to the session's ``customer_email``, else Jenny's.
        """
        if payment_status not in ("paid", "unpaid", "no_payment_required"):
            raise ValueError("payment_status must be paid, unpaid or no_payment_required")
        with self._lock:
            record = self._record(session_id)
            session = record.data
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}, not open")
            session["status"] = "complete"
            session["payment_status"] = payment_status
            session["url"] = None
            session["customer_details"] = {
                "address": None,
                "business_name": None,
                "email": customer_email or session["customer_email"] or "jenny@example.com",
                "individual_name": None,
                "name": name,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            if session["mode"] == "payment":
                session["payment_intent"] = _random_id("pi_")
            elif session["mode"] == "subscription":
                session["subscription"] = _random_id("sub_")
                session["invoice"] = _random_id("in_")
            else:
                session["setup_intent"] = _random_id("seti_")
            return [self._emit("checkout.session.completed", record)]

    def async_payment(self, session_id: str, succeeded: bool) -> List[Dict[str, Any]]:
        """A delayed payment settled or failed; only for complete, unpaid sessions."""
        with self._lock:
            record = self._record(session_id)
            session = record.data
            if session["status"] != "complete" or session["payment_status"] != "unpaid":
                raise ValueError(
                    f"session {session_id} is {session['status']}/{session['payment_status']}; "
                    "async payment results only apply to complete, unpaid sessions"
                )
            if succeeded:
                session["payment_status"] = "paid"
                event_type = "checkout.session.async_payment_succeeded"
            else:
                event_type = "checkout.session.async_payment_failed"
            return [self._emit(event_type, record)]

    def expire(self, session_id: str) -> List[Dict[str, Any]]:
        """Expire an open session (as its expires_at passing would); returns [checkout.session.expired]."""
        with self._lock:
            record = self._record(session_id)
            if record.data["status"] != "open":
                raise ValueError(f"session {session_id} is {record.data['status']}, not open")
            return [self._expire_locked(record)]

    # -- internals (callers hold the lock) ---------------------------------

    def _record(self, session_id: str) -> _SessionRecord:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise KeyError(f"No such checkout.session: '{session_id}'") from None

    def _expire_locked(self, record: _SessionRecord, request_id: Optional[str] = None,
                       idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        record.data["status"] = "expired"
        record.data["url"] = None
        return self._emit("checkout.session.expired", record, request_id, idempotency_key)

    def _emit(self, event_type: str, record: _SessionRecord, request_id: Optional[str] = None,
              idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        event = build_event(event_type, record, request_id, idempotency_key)
        self._events.append(event)
        self._events_by_id[event["id"]] = event
        return copy.deepcopy(event)

    # -- HTTP entry point ----------------------------------------------------

    def handle_http(self, method: str, path: str, query: str, headers: Any, body: bytes) -> _Reply:
        """Answer one HTTP request; ``headers`` needs a case-insensitive ``get``."""
        if path.startswith("/_standin/"):
            return self._handle_admin(method, path, headers, body)
        return self._handle_api(method, path, query, headers, body)

    def _handle_api(self, method: str, path: str, query: str, headers: Any, body: bytes) -> _Reply:
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
        self._log(method, path, params, headers)
        if self._latency > 0:
            time.sleep(self._latency)
        try:
            self._raise_injected_fault(headers.get("Authorization"))
            if params is None:
                raise StripeError(400, "The request body could not be decoded as a form.")
            api_key, livemode = _authenticate(headers.get("Authorization"))
            if not _VERSION_RE.match(api_version):
                raise StripeError(400, f"Invalid Stripe API version: {api_version}")
            call = _ApiCall(
                method, path, params, api_key, livemode, api_version, request_id, idempotency_key
            )
            with self._lock:
                reply = self._route(call)
        except StripeError as error:
            reply_headers.update(error.headers)
            return _Reply(error.status, _json_bytes(error.to_dict()), reply_headers)
        reply.headers.update(reply_headers)
        return reply

    def _log(self, method: str, path: str, params: Any, headers: Any) -> None:
        kept = {name: headers.get(name) for name in LOGGED_HEADERS if headers.get(name) is not None}
        with self._lock:
            self._request_count += 1
            self._requests.append(LoggedRequest(method, path, params if params is not None else {}, kept))

    def _raise_injected_fault(self, authorization: Optional[str]) -> None:
        with self._lock:
            if not self._faults:
                return
            fault = self._faults.popleft()
        raise _fault_error(fault, authorization)

    def _route(self, call: "_ApiCall") -> _Reply:
        uses_key = call.method == "POST" and call.idempotency_key
        if uses_key:
            stored = self._idempotency.get((call.api_key, call.idempotency_key))
            if stored is not None:
                return _replay(stored, call)
        reply = self._dispatch(call)
        if uses_key:
            self._remember(call, reply)
        return reply

    def _dispatch(self, call: "_ApiCall") -> _Reply:
        if call.path == _SESSIONS_PATH and call.method == "POST":
            return self._create(call)
        if call.path == _SESSIONS_PATH and call.method == "GET":
            return self._list(call)
        match = _SESSION_PATH_RE.match(call.path)
        if match and call.method == "GET":
            return self._retrieve(call, match.group(1))
        match = _EXPIRE_PATH_RE.match(call.path)
        if match and call.method == "POST":
            return self._expire_via_api(call, match.group(1))
        raise StripeError(
            404,
            f"Unrecognized request URL ({call.method}: {call.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    def _create(self, call: "_ApiCall") -> _Reply:
        checked = validate_create_params(call.params, call.api_version)
        expand = _expand_list(checked)
        line_items = build_line_items(checked, call.livemode)
        session = build_session(checked, line_items, call.livemode)
        record = _SessionRecord(session, call.api_version, line_items)
        self._sessions[session["id"]] = record
        return _Reply(200, _json_bytes(record.render(call.api_version, expand)), {})

    def _list(self, call: "_ApiCall") -> _Reply:
        """Newest first, as Stripe lists; only `status` and `limit` filter here."""
        params = check_params(call.params, SessionListParams) or {}
        limit = int(params.get("limit") or 10)
        if not 1 <= limit <= 100:
            raise StripeError(400, "limit must be between 1 and 100", param="limit")
        records = [
            r for r in reversed(list(self._sessions.values()))
            if r.data["livemode"] == call.livemode and params.get("status") in (None, r.data["status"])
        ]
        page = {
            "object": "list",
            "data": [r.render(call.api_version) for r in records[:limit]],
            "has_more": len(records) > limit,
            "url": _SESSIONS_PATH,
        }
        return _Reply(200, _json_bytes(page), {})

    def _retrieve(self, call: "_ApiCall", session_id: str) -> _Reply:
        expand = _expand_list(check_params(call.params, SessionRetrieveParams) or {})
        record = self._visible_record(session_id, call.livemode)
        return _Reply(200, _json_bytes(record.render(call.api_version, expand)), {})

    def _expire_via_api(self, call: "_ApiCall", session_id: str) -> _Reply:
        expand = _expand_list(check_params(call.params, SessionExpireParams) or {})
        record = self._visible_record(session_id, call.livemode)
        status = record.data["status"]
        if status != "open":
            raise StripeError(
                400,
                f"Only Checkout Sessions with a status in [\"open\"] can be expired. "
                f"This Checkout Session has a status of \"{status}\".",
                param="session",
            )
        self._expire_locked(record, call.request_id, call.idempotency_key)
        return _Reply(200, _json_bytes(record.render(call.api_version, expand)), {})

    def _visible_record(self, session_id: str, livemode: bool) -> _SessionRecord:
        """Sessions are invisible to keys of the other mode, as on Stripe."""
        record = self._sessions.get(session_id)
        if record is None or record.data["livemode"] != livemode:
            raise _no_such("checkout.session", session_id, "session", status=404)
        return record

    def _remember(self, call: "_ApiCall", reply: _Reply) -> None:
        """Keep a successful result for replay; failed validation is not kept, as on Stripe."""
        if reply.status != 200:
            return
        self._idempotency[(call.api_key, call.idempotency_key)] = _IdempotentResult(
            call.method, call.path, call.params, _Reply(reply.status, reply.body, {}), call.request_id
        )
        while len(self._idempotency) > self._idempotency_limit:
            self._idempotency.popitem(last=False)

    # -- admin endpoints -----------------------------------------------------

    def _handle_admin(self, method: str, path: str, headers: Any, body: bytes) -> _Reply:
        try:
            payload = _decode_admin_body(headers, body)
            result = self._admin_route(method, path, payload)
            return _Reply(200, _json_bytes(result), {})
        except KeyError as error:
            return _admin_error(404, error.args[0] if error.args else str(error))
        except (ValueError, TypeError) as error:
            return _admin_error(400, str(error))

    def _admin_route(self, method: str, path: str, payload: Dict[str, Any]) -> Any:
        match = _ADMIN_SESSION_RE.match(path)
        if match:
            session_id, action = match.groups()
            return self._admin_session(method, session_id, action, payload)
        match = _ADMIN_EVENT_RE.match(path)
        if match and method == "GET":
            return self.event(match.group(1))
        if path == "/_standin/events" and method == "GET":
            return {"object": "list", "data": self.events, "has_more": False}
        if path == "/_standin/requests" and method == "GET":
            with self._lock:
                logged = [entry._asdict() for entry in self._requests]
                count = self._request_count
            return {"request_count": count, "data": logged}
        if path == "/_standin/faults" and method == "POST":
            self.fail_next(
                int(payload.get("fail_next", 1)),
                int(payload.get("status", 500)),
                should_retry=_optional_bool(payload.get("should_retry")),
            )
            return {"pending_faults": self.pending_faults}
        if path == "/_standin/latency" and method == "POST":
            self.latency = float(payload.get("seconds", 0))
            return {"seconds": self.latency}
        if path == "/_standin/reset" and method == "POST":
            self.reset()
            return {"reset": True}
        raise KeyError(f"Unrecognized stand-in admin URL ({method}: {path})")

    def _admin_session(
        self, method: str, session_id: str, action: Optional[str], payload: Dict[str, Any]
    ) -> Any:
        if action is None and method == "GET":
            return self.session(session_id)
        if method != "POST" or action is None:
            raise KeyError(f"Unrecognized stand-in admin URL ({method}: {session_id})")
        if action == "complete":
            events = self.complete(
                session_id,
                payment_status=payload.get("payment_status", "paid"),
                customer_email=payload.get("customer_email"),
                name=payload.get("name", "Jenny Rosen"),
            )
        elif action == "async_payment":
            succeeded = _optional_bool(payload.get("succeeded"))
            if succeeded is None:
                raise ValueError("succeeded (true or false) is required")
            events = self.async_payment(session_id, succeeded)
        else:
            events = self.expire(session_id)
        return {"session": self.session(session_id), "events": events}


def _authenticate(authorization: Optional[str]) -> Tuple[str, bool]:
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
        raise StripeError(
            401, f"Invalid API Key provided: {_mask_key(api_key)}", type="authentication_error"
        )
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


def _expand_list(params: Dict[str, Any]) -> Tuple[str, ...]:
    expand = tuple(params.get("expand", ()))
    for field in expand:
        if field != "line_items":
            raise StripeError(
                400,
                f"This property cannot be expanded ({field}). The stand-in can only expand line_items.",
                param="expand",
            )
    return expand


def _optional_bool(value: Any) -> Optional[bool]:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _decode_admin_body(headers: Any, body: bytes) -> Dict[str, Any]:
    """Admin endpoints take JSON or a plain form, whichever is handier."""
    text = body.decode("utf-8").strip() if body else ""
    if not text:
        return {}
    content_type = headers.get("Content-Type") or ""
    if "json" in content_type or text.startswith("{"):
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object")
        return payload
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
