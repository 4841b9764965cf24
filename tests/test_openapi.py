"""openapi.yaml says what the code does: its paths, methods, limits, id rules and every status.

The fuzz run (tests/test_fuzz.py) checks answers against the document; this
checks the document against the code's own constants, so neither drifts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import schemathesis
import yaml

import main
from checkout import create
from common import errors, http, serving, stripe_rules
from payments import events
from payments.events import HANDLED_EVENTS
from payments.store import StoreUnavailable
from webhook import handler

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = yaml.safe_load((ROOT / "openapi.yaml").read_text())
PATHS = DOCUMENT["paths"]
SCHEMAS = DOCUMENT["components"]["schemas"]
CREATE, STATUS, WEBHOOK = "/api/checkout/embedded-session", "/api/checkout/session-status", "/webhook"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def deref(node: dict) -> dict:
    """The object a `$ref` points at (followed until it is not a reference)."""
    while "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations():
    for path, item in PATHS.items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def parameter(path: str, method: str, name: str) -> dict:
    (found,) = [deref(p) for p in PATHS[path][method].get("parameters", []) if deref(p)["name"] == name]
    return found


def anchored(pattern: re.Pattern) -> str:
    return f"^{pattern.pattern}$"


def test_the_document_is_valid_openapi():
    schemathesis.openapi.from_dict(DOCUMENT).validate()


def test_it_describes_every_route_and_only_those():
    assert set(PATHS) == set(main.ROUTES)


@pytest.mark.parametrize("path", sorted(main.ROUTES))
def test_each_path_describes_the_methods_its_endpoint_allows(path):
    described = {method.upper() for method in PATHS[path] if method in METHODS}

    assert described == set(main.ROUTES[path].allowed_methods)


def test_the_create_body_carries_stripes_metadata_limits():
    metadata = SCHEMAS["CreateSessionRequest"]["properties"]["metadata"]

    assert metadata["maxProperties"] == stripe_rules.METADATA_MAX_KEYS
    assert metadata["propertyNames"]["maxLength"] == stripe_rules.METADATA_KEY_MAX_CHARS
    assert metadata["additionalProperties"]["maxLength"] == stripe_rules.METADATA_VALUE_MAX_CHARS
    assert SCHEMAS["CreateSessionRequest"]["additionalProperties"] is False


def test_the_session_metadata_in_events_has_the_same_limits():
    metadata = SCHEMAS["CheckoutSession"]["properties"]["metadata"]

    assert metadata["maxProperties"] == stripe_rules.METADATA_MAX_KEYS
    assert metadata["additionalProperties"]["maxLength"] == stripe_rules.METADATA_VALUE_MAX_CHARS


@pytest.mark.parametrize("path, limit", [(CREATE, create.MAX_BODY_BYTES), (WEBHOOK, handler.MAX_BODY_BYTES)])
def test_each_body_limit_is_the_codes(path, limit):
    body = PATHS[path]["post"]["requestBody"]

    assert body["x-max-body-bytes"] == limit
    assert f"{limit} bytes" in body["description"]


def test_the_idempotency_key_limit_is_the_codes():
    schema = deref(DOCUMENT["components"]["parameters"]["IdempotencyKey"])["schema"]

    assert schema["maxLength"] == stripe_rules.IDEMPOTENCY_KEY_MAX_CHARS


def test_ids_follow_stripe_rules():
    session = SCHEMAS["CheckoutSession"]["properties"]

    assert parameter(STATUS, "get", "session_id")["schema"]["pattern"] == anchored(stripe_rules.CHECKOUT_SESSION_ID)
    assert session["id"]["pattern"] == anchored(stripe_rules.CHECKOUT_SESSION_ID)
    assert session["payment_intent"]["pattern"] == anchored(stripe_rules.PAYMENT_INTENT_ID)
    assert SCHEMAS["EventEnvelope"]["properties"]["id"]["pattern"] == anchored(stripe_rules.EVENT_ID)


def test_the_handled_event_types_are_the_codes():
    handled = [
        kind
        for name in ("CheckoutSessionEvent", "ChargeRefundedEvent", "DisputeEvent")
        for kind in SCHEMAS[name]["allOf"][1]["properties"]["type"]["enum"]
    ]
    others = SCHEMAS["OtherEvent"]["allOf"][1]["properties"]["type"]["not"]["enum"]

    assert handled == others == list(HANDLED_EVENTS)


def test_amounts_and_times_are_the_codes():
    assert SCHEMAS["Amount"]["maximum"] == events.MAX_AMOUNT
    assert SCHEMAS["UnixTime"]["maximum"] == events.LATEST_TIME
    assert SCHEMAS["CheckoutSession"]["properties"]["customer_email"]["maxLength"] == events.MAX_EMAIL_CHARS


def test_the_signature_tolerance_is_the_codes():
    assert f"{handler.TOLERANCE_SECONDS} seconds" in PATHS[WEBHOOK]["post"]["description"]


def test_the_servers_own_limits_are_the_codes():
    responses = DOCUMENT["components"]["responses"]

    assert f"{serving.MAX_HEAD_BYTES // 1024} KiB" in responses["HeadTooLarge"]["description"]
    assert f"{serving.HEAD_TIMEOUT_SECONDS:g} seconds" in responses["Timeout"]["description"]
    assert f"{http.BODY_TIMEOUT_SECONDS:g} seconds" in responses["Timeout"]["description"]


@pytest.mark.parametrize("path, method, operation", list(operations()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_refusal_is_the_json_error_shape(path, method, operation):
    for status, response in operation["responses"].items():
        if int(status) >= 400:
            assert deref(response)["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def statuses_answered(operation: dict, status: str) -> dict | None:
    response = operation["responses"].get(status)
    return deref(response) if response else None


@pytest.mark.parametrize("status", ["429", "503"])
def test_answers_that_ask_for_patience_say_how_long(status):
    described = [statuses_answered(op, status) for _, _, op in operations() if statuses_answered(op, status)]

    assert described
    assert all(response["headers"]["Retry-After"] for response in described)


def test_the_preflight_describes_its_cors_headers_and_values():
    headers = DOCUMENT["components"]["responses"]["Preflight"]["headers"]

    assert headers["Access-Control-Allow-Headers"]["schema"]["const"] == http.ALLOWED_HEADERS
    assert headers["Access-Control-Allow-Methods"]["schema"]["const"] == "GET, POST, OPTIONS"
    assert headers["Vary"]["schema"]["const"] == "Origin"


def statuses_the_code_answers() -> set[int]:
    """Every status the code can refuse with: the domain errors' table, the HTTP layer, the server."""
    domain = [
        errors.InvalidRequest("x"),
        errors.NotFound("x"),
        errors.RateLimited(1),
        errors.SettingError("X", "x"),
        errors.IdempotencyConflict("x"),
        errors.ProviderRefused("x"),
        errors.ProviderBusy("x"),
        errors.ProviderUnavailable("x"),
        StoreUnavailable("x"),
        errors.Unauthenticated("x"),
        errors.CheckUnavailable("x"),
    ]
    from_table = {http.answer_for(error)[0] for error in domain}
    http_layer = {
        int(status)
        for status in re.findall(
            r"HttpError\((\d{3})", (ROOT / "common/http.py").read_text() + (ROOT / "main.py").read_text()
        )
    }
    server = {400, serving.NOT_ROUTED[0], 408, serving.HEAD_TOO_LARGE[0]}
    return from_table | http_layer | server


def test_every_status_the_code_answers_is_described():
    described = {int(status) for _, _, op in operations() for status in op["responses"]}
    not_routed_by_any_endpoint = {serving.NOT_ROUTED[0], 404}  # a method or path the document has no operation for

    assert statuses_the_code_answers() - not_routed_by_any_endpoint <= described


def test_docs_api_lists_every_refusal_the_document_describes():
    table = (ROOT / "docs" / "api.md").read_text()
    listed = {int(status) for status in re.findall(r"^\| (\d{3}) \|", table, flags=re.MULTILINE)}
    described = {int(status) for _, _, op in operations() for status in op["responses"] if int(status) >= 400}

    assert described | statuses_the_code_answers() == listed
