"""The HTTP layer: JSON answers, method and origin checks, CORS, body limits, one log line.

A handler is `async handler(request, context) -> (body, status)` that raises
domain errors (`common.errors`, `payments.store.StoreUnavailable`) or
`HttpError`. `endpoint(...)` wraps it; `answer_for` is the one table that
turns each error into a status, a message and headers.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from common import errors, logs
from payments.store import StoreUnavailable

PREFLIGHT_MAX_AGE_SECONDS = "3600"
# X-Firebase-AppCheck is allowed whether or not App Check is enforced, so a
# frontend can send tokens before enforcement is switched on, and browsers'
# cached preflights (PREFLIGHT_MAX_AGE_SECONDS) stay valid when it is.
ALLOWED_HEADERS = "Content-Type, Idempotency-Key, X-Firebase-AppCheck"
# A body that has not fully arrived by then is answered 408: a slow client
# must not hold the request open.
BODY_TIMEOUT_SECONDS = 5.0

Handler = Callable[[Request, "object"], Awaitable[tuple[dict, int]]]

# Errors only a person can fix: a setting (a missing or rejected secret) and a
# request to Stripe we built wrong. Their request line is also an Error
# Reporting entry, so they are grouped and notified; their messages name a
# setting or Stripe's error code, never a value. Outages (Stripe or the store
# unavailable) are not: they pass, and the alerts on 5xx rates watch them.
NEEDS_A_PERSON = (errors.SettingError, errors.ProviderRefused)


class HttpError(Exception):
    """A refusal decided by the HTTP layer itself (method, origin, body size)."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def answer_for(error: Exception) -> tuple[int, str, dict] | None:
    """Status, message and headers for each error the lower layers raise; None for a bug."""
    match error:
        case HttpError():
            return error.status, error.message, error.headers
        case errors.InvalidRequest():
            return 400, str(error), {}
        case errors.Unauthenticated():
            return 401, str(error), {}
        case errors.NotFound():
            return 404, str(error), {}
        case errors.RateLimited():
            return 429, "Too many requests; slow down and retry later.", {"Retry-After": str(error.retry_after)}
        case errors.CheckUnavailable():
            return (
                503,
                "Could not check this request right now; try again shortly.",
                {"Retry-After": str(error.retry_after)},
            )
        case errors.SettingError():
            return 500, f"Server misconfigured: {error.name} {error.problem}.", {}
        case errors.IdempotencyConflict():
            return 409, "This Idempotency-Key was already used with a different request body.", {}
        case errors.ProviderRefused():
            return 500, "Our request to the payment provider was wrong; it has been logged.", {}
        case errors.ProviderBusy():
            return 503, "Payment provider is busy; try again shortly.", {"Retry-After": "2"}
        case errors.ProviderUnavailable():
            return 502, "Payment provider is unavailable; try again shortly.", {}
        case StoreUnavailable():
            return 503, "Payment store is unavailable; try again shortly.", {"Retry-After": "5"}
    return None


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    try:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped, so the answer is still valid JSON
        content = json.dumps(body).encode("ascii")
    # Answers carry client secrets and payment state: never cached by a browser or a proxy.
    response = Response(content, status, media_type="application/json", headers={"Cache-Control": "no-store"})
    if headers:
        response.headers.update(headers)
    return response


def endpoint(name: str, handler: Handler, context, methods: tuple[str, ...], cors: bool = False):
    """Wrap `handler` with the method check, origin check, CORS, JSON errors and logging.

    `cors=True` is for the browser-facing checkout paths: OPTIONS preflights
    are answered here, allowed origins get Access-Control-Allow-Origin, and a
    request from an origin that is not allowed is refused before any work (a
    cross-site form or `text/plain` POST is sent without a preflight). The
    webhook is called by Stripe, not a browser, and sends no CORS headers.
    """
    allowed = (*methods, "OPTIONS") if cors else methods

    async def serve(request: Request) -> Response:
        request.state.log = {}
        try:
            if cors and request.method == "OPTIONS" and "origin" in request.headers:
                return _preflight(request, context)
            if request.method not in methods:
                raise HttpError(405, f"Method not allowed; use {', '.join(methods)}.", {"Allow": ", ".join(allowed)})
            origin = _allowed_origin(request, context) if cors else None
            if cors and origin is None and "origin" in request.headers:
                raise HttpError(403, "Origin not allowed; add it to ALLOWED_ORIGINS.", {"Vary": "Origin"})
            body, status = await handler(request, context)
            response = json_response(body, status)
            if origin:
                _cors_headers(response, origin)
        except Exception as error:  # noqa: BLE001 - every failure becomes a JSON answer; a bug is reported there
            response = _error_response(request, name, error, context if cors else None)
        else:
            if not request.state.log.pop("quiet", False):
                _log_line(request, name, response.status_code)
        return response

    serve.__name__ = serve.__qualname__ = name
    serve.allowed_methods = allowed  # type: ignore[attr-defined] # what its Allow header lists; the API description is checked against it
    return serve


def _error_response(request: Request, name: str, error: Exception, cors_context) -> Response:
    answer = answer_for(error)
    if answer is None:  # a bug: answer JSON, report the class and stack, never the value
        logs.error_report(
            f"{name}: unhandled {error.__class__.__name__}",
            error,
            endpoint=name,
            status=500,
            **logs.trace_fields(request.headers),
        )
        answer = 500, "Internal error; it has been logged.", {}
    else:
        _log_line(request, name, answer[0], error)
    status, message, headers = answer
    response = json_response({"error": message}, status, headers)
    if cors_context is not None and "origin" in request.headers:
        origin = _allowed_origin(request, cors_context)
        if origin:
            _cors_headers(response, origin)
    return response


def _log_line(request: Request, name: str, status: int, error: Exception | None = None) -> None:
    fields = {"endpoint": name, "status": status, **request.state.log}
    if error is not None:
        fields["error"] = error.__class__.__name__
        request_id = getattr(error, "request_id", None)
        if request_id:
            fields["stripe_request_id"] = request_id
        if isinstance(error, errors.SettingError):
            fields["setting"] = error.name
    if isinstance(error, NEEDS_A_PERSON):
        logs.error_report(f"{name} {status}: {error}", error, **fields, **logs.trace_fields(request.headers))
        return
    severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    logs.write(severity, f"{name} {status}", **fields, **logs.trace_fields(request.headers))


def note(request: Request, **fields) -> None:
    """Add ids or an outcome to this request's log line."""
    request.state.log.update(fields)


def quiet(request: Request) -> None:
    """Write no log line if this request succeeds: Cloud Run's request log already has it, and it says nothing new.

    Refusals and failures are always logged.
    """
    request.state.log["quiet"] = True


def _allowed_origin(request: Request, context) -> str | None:
    origin = request.headers.get("origin")
    if not origin:
        return None
    try:
        settings = context.settings
    except errors.SettingError:  # misconfigured: the error itself is answered, without CORS
        return None
    if settings.allows_any_origin:
        return "*"
    return origin if origin in settings.allowed_origins else None


def _cors_headers(response: Response, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"


def _preflight(request: Request, context) -> Response:
    origin = _allowed_origin(request, context)
    if origin is None:
        raise HttpError(403, "Origin not allowed; add it to ALLOWED_ORIGINS.", {"Vary": "Origin"})
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_SECONDS,
            "Vary": "Origin",
        },
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body: 413 past `limit` bytes, 408 if it has not all arrived within BODY_TIMEOUT_SECONDS.

    The declared length is checked first so a large upload is refused
    without being read; a chunked body is read only to one byte past the
    limit. Both refusals close the connection: the rest of the body is not
    read, so the connection cannot carry another request.
    """
    close = {"Connection": "close"}
    too_large = HttpError(413, f"Request body is larger than {limit} bytes.", close)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large if declared.isdigit() else HttpError(400, "Content-Length is not a number.", close)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise HttpError(408, f"Request body did not arrive within {BODY_TIMEOUT_SECONDS:g} seconds.", close) from None
    except ClientDisconnect:
        raise HttpError(400, "The connection closed before the body arrived.") from None
    return b"".join(chunks)


# A JSON escape of a UTF-16 surrogate; only then can a parsed string hold a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def parse_json(raw: bytes, what: str = "Request body"):
    """The JSON value in `raw`, or InvalidRequest naming `what`; no text of it is quoted.

    Every string in it, keys included, is checked here once for valid
    Unicode: a lone surrogate (`"\\ud800"`) parses, but cannot be encoded
    for Stripe, a store or a log. Nesting deeper than the parser's recursion
    limit is refused too, and so are NaN and Infinity, which are not JSON,
    and numbers too large for a float. A whole number written with a
    fraction or an exponent (`2.0`, `2e3`) is read as the integer it is, as
    JSON Schema reads it.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidRequest(f"{what} is not UTF-8 text.") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_number)
    except RecursionError:
        raise errors.InvalidRequest(f"{what} is nested too deeply.") from None
    except ValueError:
        raise errors.InvalidRequest(f"{what} is not JSON.") from None
    if _SURROGATE_ESCAPE.search(raw) and _holds_lone_surrogate(value):
        raise errors.InvalidRequest(f"{what} holds text that is not valid Unicode (a lone surrogate).")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _number(text: str) -> int | float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number too large")
    # Past 2**53 a float no longer spells one integer exactly: it stays a float.
    return int(value) if value.is_integer() and abs(value) <= 2**53 else value


def _holds_lone_surrogate(value) -> bool:
    """Walked with a list, not recursion: the value may be nested nearly as deep as the parser allows."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def client_ip(request: Request, trusted_hops: int) -> str:
    """The caller's address as seen by the nearest proxy we trust.

    Google's front end appends the address it saw to X-Forwarded-For, so the
    last entry is trustworthy while earlier ones may be forged by the client.
    Behind an external Application Load Balancer (which appends the client and
    its own address) the client is the second entry from the end: 2 hops.
    """
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    if trusted_hops and len(forwarded) >= trusted_hops:
        return forwarded[-trusted_hops]
    return request.client.host if request.client else "unknown"
