"""HTTP plumbing shared by every entry point: JSON answers, method checks,
CORS, body limits, client IPs and one log line per request.

A handler is a plain function `handler(request, settings) -> (body, status)`
that raises `HttpError` to refuse. `endpoint(...)` wraps it, so the rules
about methods, origins, error shapes and logging live in one place.
"""

from __future__ import annotations

import functools
import json
import time

import flask

from common import logs, settings as settings_module
from common.errors import HttpError

PREFLIGHT_MAX_AGE_SECONDS = "3600"


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def endpoint(name: str, methods: tuple[str, ...], cors: bool = False):
    """Wrap a handler with the method check, CORS, JSON errors and logging.

    `cors=True` is for the browser-facing checkout paths: OPTIONS preflights
    are answered here and allowed origins get Access-Control-Allow-Origin.
    The webhook is called by Stripe, not a browser, and sends no CORS headers.
    """
    allowed = methods + ("OPTIONS",) if cors else methods

    def decorate(handler):
        @functools.wraps(handler)
        def wrapper(request: flask.Request) -> flask.Response:
            started = time.perf_counter()
            try:
                response = _dispatch(handler, request, methods, allowed, cors)
            except HttpError as error:
                response = json_response({"error": error.message}, error.status, error.headers)
                if cors:
                    _add_cors_headers(request, response)
                logs.error_line(request, name, error.status, error.message, error.__cause__)
            except Exception as error:  # a bug: answer JSON, log the class and stack, never the value
                response = json_response({"error": "Internal error; it has been logged."}, 500)
                logs.exception_line(request, name, error)
            logs.request_line(request, name, response.status_code, time.perf_counter() - started)
            return response

        return wrapper

    return decorate


def _dispatch(handler, request, methods, allowed, cors) -> flask.Response:
    if cors and request.method == "OPTIONS":
        return _preflight(request)
    if request.method not in methods:
        raise HttpError(
            405, f"Method {request.method} not allowed; use {', '.join(methods)}.", {"Allow": ", ".join(allowed)}
        )
    body, status = handler(request, settings_module.get())
    response = json_response(body, status)
    if cors:
        _add_cors_headers(request, response)
    return response


def _allowed_origin(request: flask.Request) -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    try:
        settings = settings_module.get()
    except HttpError:  # misconfigured: the error itself is answered, without CORS
        return None
    if settings.allows_any_origin:
        return "*"
    return origin if origin in settings.allowed_origins else None


def _add_cors_headers(request: flask.Request, response: flask.Response) -> None:
    response.headers["Vary"] = "Origin"
    origin = _allowed_origin(request)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin


def _preflight(request: flask.Request) -> flask.Response:
    origin = _allowed_origin(request)
    if origin is None:
        raise HttpError(403, "Origin not allowed; add it to ALLOWED_ORIGINS.", {"Vary": "Origin"})
    response = flask.Response(status=204)
    response.headers.update(
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_SECONDS,
            "Vary": "Origin",
        }
    )
    return response


def read_body(request: flask.Request, limit: int) -> bytes:
    """The raw body, refusing with 413 anything over `limit` bytes.

    The declared length is checked first so a large upload is refused
    without being read; a chunked body is read to one byte past the limit.
    """
    too_large = HttpError(413, f"Request body is larger than {limit} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise too_large
    return data


def client_ip(request: flask.Request, trusted_hops: int) -> str:
    """The caller's address as seen by the nearest proxy we trust.

    Google's front end appends the address it saw to X-Forwarded-For, so the
    last entry is trustworthy while earlier ones may be forged by the client.
    Behind an external Application Load Balancer (which appends the client and
    its own address) the client is the second entry from the end: 2 hops.
    """
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    if trusted_hops and len(forwarded) >= trusted_hops:
        return forwarded[-trusted_hops]
    return request.remote_addr or "unknown"
