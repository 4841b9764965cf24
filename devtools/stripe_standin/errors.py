"""Stripe's error answers: the JSON shape, the usual messages, and the faults
the stand-in can inject.

Application code branches on a failure's HTTP status, ``type`` and ``code``
(the SDK turns them into its exception classes and decides on retries from
them), so every failure the stand-in produces is a ``StripeError`` that goes
out in exactly Stripe's shape. The parameter checks, the object builders and
the server all raise it, which is why it lives apart from each of them.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class StripeError(Exception):
    """An API failure, answered in Stripe's error JSON shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        error = {
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "type": self.type,
        }
        if self.code:
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        return {"error": error}


def _missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def _no_such(kind: str, object_id: str, param: str, status: int = 400) -> StripeError:
    return StripeError(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


# --------------------------------------------------------------------------
# Injected faults


# How each injectable status looks on the wire: (error type, code, message).
_SERVER_FAULT = ("api_error", None, "Something went wrong on Stripe's end (simulated).")
FAULTS = {
    400: ("invalid_request_error", None, "Invalid request (simulated)."),
    401: ("authentication_error", None, "Invalid API Key provided: {masked_key}"),
    402: ("card_error", "card_declined", "Your card was declined."),
    403: ("invalid_request_error", None, "The provided key does not have the required permissions."),
    404: ("invalid_request_error", "resource_missing", "No such resource (simulated)."),
    409: (
        "invalid_request_error",
        "lock_timeout",
        "This object cannot be accessed right now because another API request or Stripe "
        "process is currently accessing it.",
    ),
    429: (
        "rate_limit_error",
        "rate_limit",
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
    ),
    500: _SERVER_FAULT,
    502: _SERVER_FAULT,
    503: _SERVER_FAULT,
    504: _SERVER_FAULT,
}
FAULT_STATUSES = tuple(FAULTS)


class _Fault(NamedTuple):
    status: int
    should_retry: bool | None


def _mask_key(api_key: str) -> str:
    """Show a key the way Stripe echoes it: its prefix and last four characters."""
    if len(api_key) < 16:
        return api_key[:8] + "****"
    return api_key[:8] + "*" * (len(api_key) - 12) + api_key[-4:]


def _fault_error(fault: _Fault, authorization: str | None) -> StripeError:
    error_type, code, message = FAULTS[fault.status]
    api_key = (authorization or "")[len("Bearer ") :].strip()
    error = StripeError(
        fault.status,
        message.format(masked_key=_mask_key(api_key)),
        type=error_type,
        code=code,
    )
    should_retry = fault.should_retry
    if fault.status == 429:
        error.headers["Retry-After"] = "1"
    elif fault.status >= 500 and should_retry is None:
        should_retry = True
    if should_retry is not None:
        error.headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    return error
