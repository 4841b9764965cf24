"""The ``/_standin/`` endpoints: the stand-in's controls over HTTP, for other processes.

Each is a thin wrapper around a public ``StripeStandin`` method, so a
benchmark or ``devtools.simulate`` in another process can do what a test
does in-process. They take JSON or a plain form, need no API key, are not
logged as API requests and ignore injected faults and latency.

Simulations answer ``{"session": …, "events": […]}`` (sessions) or
``{"payment": …, "events": […]}`` (refunds, disputes); the events are the
ones to deliver to a webhook. Errors are Stripe-shaped: 404 for an unknown
object or URL, 400 for a change the object's state does not allow.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from devtools.stripe_standin.transport import _admin_error, _json_bytes, _Reply

if TYPE_CHECKING:
    from devtools.stripe_standin.server import StripeStandin

_SESSION_RE = re.compile(r"^/_standin/sessions/([^/]+)(?:/(complete|async_payment|expire))?$")
_PAYMENT_RE = re.compile(r"^/_standin/payments/([^/]+)(?:/(refund|dispute|update_dispute|close_dispute))?$")
_EVENT_RE = re.compile(r"^/_standin/events/([^/]+)$")


def handle(standin: StripeStandin, method: str, path: str, headers: Any, body: bytes) -> _Reply:
    try:
        payload = _decode_body(headers, body)
        return _Reply(200, _json_bytes(_route(standin, method, path, payload)), {})
    except KeyError as error:
        return _admin_error(404, error.args[0] if error.args else str(error))
    except (ValueError, TypeError) as error:
        return _admin_error(400, str(error))


def _route(standin: StripeStandin, method: str, path: str, payload: dict[str, Any]) -> Any:
    match = _SESSION_RE.match(path)
    if match:
        return _session(standin, method, match.group(1), match.group(2), payload)
    match = _PAYMENT_RE.match(path)
    if match:
        return _payment(standin, method, match.group(1), match.group(2), payload)
    match = _EVENT_RE.match(path)
    if match and method == "GET":
        return standin.event(match.group(1))
    if path == "/_standin/events" and method == "GET":
        return {"object": "list", "data": standin.events, "has_more": False}
    if path == "/_standin/requests" and method == "GET":
        logged = [entry._asdict() for entry in standin.requests]
        return {"request_count": standin.request_count, "data": logged}
    if path == "/_standin/faults" and method == "POST":
        standin.fail_next(
            int(payload.get("fail_next", 1)),
            int(payload.get("status", 500)),
            should_retry=_optional_bool(payload.get("should_retry")),
        )
        return {"pending_faults": standin.pending_faults}
    if path == "/_standin/latency" and method == "POST":
        standin.latency = float(payload.get("seconds", 0))
        return {"seconds": standin.latency}
    if path == "/_standin/clock" and method in ("GET", "POST"):
        if method == "POST":
            standin.advance_time(float(payload.get("advance", 0)))
        return {"now": standin.now}
    if path == "/_standin/reset" and method == "POST":
        standin.reset()
        return {"reset": True}
    raise KeyError(f"Unrecognized stand-in admin URL ({method}: {path})")


def _session(standin: StripeStandin, method: str, session_id: str, action: str | None, payload: dict[str, Any]) -> Any:
    if action is None and method == "GET":
        return standin.session(session_id)
    if method != "POST" or action is None:
        raise KeyError(f"Unrecognized stand-in admin URL ({method}: {session_id})")
    if action == "complete":
        events = standin.complete(
            session_id,
            payment_status=payload.get("payment_status", "paid"),
            customer_email=payload.get("customer_email"),
            name=payload.get("name", "Jenny Rosen"),
        )
    elif action == "async_payment":
        succeeded = _optional_bool(payload.get("succeeded"))
        if succeeded is None:
            raise ValueError("succeeded (true or false) is required")
        events = standin.async_payment(session_id, succeeded)
    else:
        events = standin.expire(session_id)
    return {"session": standin.session(session_id), "events": events}


def _payment(standin: StripeStandin, method: str, target: str, action: str | None, payload: dict[str, Any]) -> Any:
    if action is None and method == "GET":
        return standin.payment(target)
    if method != "POST" or action is None:
        raise KeyError(f"Unrecognized stand-in admin URL ({method}: {target})")
    if action == "refund":
        events = standin.refund_payment(target, payload.get("amount"), reason=payload.get("reason"))
    elif action == "dispute":
        events = standin.open_dispute(target, reason=payload.get("reason", "fraudulent"), amount=payload.get("amount"))
    elif action == "update_dispute":
        events = standin.update_dispute(target, payload.get("status", "under_review"))
    else:
        won = _optional_bool(payload.get("won"))
        if won is None:
            raise ValueError("won (true or false) is required")
        events = standin.close_dispute(target, won)
    return {"payment": standin.payment(target), "events": events}


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _decode_body(headers: Any, body: bytes) -> dict[str, Any]:
    """JSON or a plain form, whichever is handier."""
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
