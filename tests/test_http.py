"""`common.http`'s building blocks, on their own: the endpoint wrapper around a handler, reading a body and
JSON from a client, the client's address, and answering JSON whatever happens."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.testclient import TestClient

from common import errors, http, logs
from common.context import Context
from common.errors import InvalidRequest
from common.http import HttpError, client_ip, endpoint, json_response, note, parse_json, read_body
from common.settings import Settings
from payments.store import StoreUnavailable

LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Text as a client may send it in JSON escapes: any code point, lone surrogates included.
CHARACTERS = st.integers(0, 7).flatmap(lambda n: st.characters(categories=["Cs"]) if n == 0 else st.characters())
ANY_TEXT = st.text(CHARACTERS, max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=15,
)


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *strings_in(item)]]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


@given(st.binary(max_size=200))
def test_any_bytes_are_a_value_or_an_invalid_request(raw):
    try:
        value = parse_json(raw)
    except InvalidRequest as refused:
        assert len(str(refused)) < 100
    else:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # every string in it can be encoded


@given(JSON_VALUES)
def test_json_is_read_back_unless_it_holds_a_lone_surrogate(value):
    raw = json.dumps(value).encode("ascii")  # escaped, as a browser's JSON.stringify may send it

    # A high and a low surrogate side by side are one character once parsed, not lone ones.
    read = json.loads(raw)
    if any(LONE_SURROGATE.search(s) for s in strings_in(read)):
        with pytest.raises(InvalidRequest, match="not valid Unicode"):
            parse_json(raw)
    else:
        assert parse_json(raw) == read


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000, b"[" * 900 + b"]" * 900])
def test_nesting_is_refused_or_read_without_recursion_errors(raw):
    try:
        parse_json(raw)
    except InvalidRequest as refused:
        assert "nested too deeply" in str(refused)


@given(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3), st.integers(100, 599))
def test_an_answer_is_json_whatever_text_it_carries(body, status):
    response = json_response(body, status)

    assert response.status_code == status
    assert json.loads(response.body) is not None
    assert response.headers["content-type"] == "application/json"


def test_an_answer_is_200_unless_told_otherwise():
    assert json_response({}).status_code == 200


def test_an_answer_carries_its_text_as_utf8_not_escaped():
    assert json_response({"error": "caf\u00e9 \u2013 ok"}).body == '{"error": "caf\u00e9 \u2013 ok"}'.encode()


def test_an_answer_holding_a_lone_surrogate_is_escaped_json():
    assert json_response({"error": "\ud800"}).body == b'{"error": "\\ud800"}'


def test_an_escaped_surrogate_pair_is_one_character_and_is_read():
    assert parse_json(rb'{"mood": "\ud83d\ude00"}') == {"mood": "\U0001f600"}


def test_an_escaped_lone_surrogate_is_refused():
    with pytest.raises(InvalidRequest, match="lone surrogate"):
        parse_json(rb'{"mood": "\ud83d"}')


def test_a_whole_number_written_as_a_float_is_the_integer():
    """JSON Schema reads 2.0 as the integer 2; so does the service, so a Stripe time or amount so written is read."""
    assert parse_json(b'{"created": 1767225600.0, "amount": 2e2, "rate": 8.25}') == {
        "created": 1767225600,
        "amount": 200,
        "rate": 8.25,
    }
    assert type(parse_json(b"2.0")) is int


def test_a_whole_number_is_an_integer_up_to_2_to_the_53rd_and_a_float_beyond():
    """Past 2**53 a float no longer spells one integer: 9007199254740994.0 may have been ...993 or ...995."""
    assert type(parse_json(b"9007199254740992.0")) is int
    assert type(parse_json(b"-9007199254740992.0")) is int
    assert type(parse_json(b"9007199254740994.0")) is float


def test_a_body_that_is_not_utf8_is_refused_naming_what_was_read():
    with pytest.raises(InvalidRequest) as refused:
        parse_json(b'{"note": "\xff"}', "Webhook body")

    assert str(refused.value) == "Webhook body is not UTF-8 text."


def test_a_number_too_large_for_a_float_is_not_json():
    with pytest.raises(InvalidRequest, match="not JSON"):
        parse_json(b'{"amount_total": 1e400}')


# -- the endpoint wrapper, around a handler of our own ------------------------------------

ORIGIN = "https://app.example"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def served(handler, methods: tuple[str, ...] = ("GET",), cors: bool = False) -> TestClient:
    """`handler` wrapped by `endpoint` as "probe" and served alone, as functions-framework serves an entry point."""
    context = Context(settings=Settings(allowed_origins=frozenset({ORIGIN})))
    serve = endpoint("probe", handler, context, methods, cors=cors)

    async def app(scope, receive, send):
        response = await serve(Request(scope, receive))
        await response(scope, receive, send)

    return TestClient(app)


def answering(body: dict, status: int = 200, **log_fields):
    async def handler(request, context):
        note(request, **log_fields)
        return body, status

    return handler


def raising(error: Exception):
    async def handler(request, context):
        raise error

    return handler


@pytest.fixture
def service_context():
    logs.configure("hero-me", "payments-api", "payments-api-00007")
    yield
    logs.configure(None)


def request_lines(log_lines) -> list[dict]:
    return [line for line in log_lines() if line.get("endpoint") == "probe"]


def test_a_handlers_answer_is_json_with_its_status(log_lines):
    response = served(answering({"received": True}, 202)).get("/")

    assert response.status_code == 202
    assert response.json() == {"received": True}
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "handler",
    [answering({"client_secret": "cs_test_a_secret_b"}), raising(errors.InvalidRequest("No.")), raising(KeyError("x"))],
    ids=["answer", "refusal", "bug"],
)
def test_no_answer_may_be_cached(handler):
    response = served(handler).get("/")

    assert response.headers["Cache-Control"] == "no-store"


def test_a_method_not_served_is_a_405_naming_the_allowed_ones():
    response = served(answering({}), methods=("POST",)).get("/")

    assert response.status_code == 405
    assert response.json() == {"error": "Method not allowed; use POST."}
    assert response.headers["Allow"] == "POST"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_405_lists_every_method_served():
    response = served(answering({}), methods=("GET", "POST")).delete("/")

    assert response.json() == {"error": "Method not allowed; use GET, POST."}
    assert response.headers["Allow"] == "GET, POST"


def test_the_methods_an_endpoint_allows_are_known_to_the_api_description():
    serve = endpoint("probe", answering({}), None, ("POST",), cors=True)

    assert serve.allowed_methods == ("POST", "OPTIONS")
    assert serve.__name__ == "probe"


def test_an_answer_to_an_allowed_origin_names_it():
    response = served(answering({"received": True}), cors=True).get("/", headers={"Origin": ORIGIN})

    assert (response.status_code, response.json()) == (200, {"received": True})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Vary"] == "Origin"


def test_without_cors_an_answer_names_no_origin():
    response = served(answering({})).get("/", headers={"Origin": ORIGIN})

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_with_cors_the_allowed_methods_include_options():
    response = served(answering({}), methods=("GET",), cors=True).delete("/")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, OPTIONS"


# Each error a lower layer raises, and the answer it must become: (status, message, headers).
ANSWERS = [
    (errors.InvalidRequest("metadata must be an object."), 400, "metadata must be an object.", {}),
    (errors.Unauthenticated("Send an App Check token."), 401, "Send an App Check token.", {}),
    (errors.NotFound("No such checkout session."), 404, "No such checkout session.", {}),
    (errors.RateLimited(7), 429, "Too many requests; slow down and retry later.", {"Retry-After": "7"}),
    (
        errors.CheckUnavailable("keys unreachable", retry_after=3),
        503,
        "Could not check this request right now; try again shortly.",
        {"Retry-After": "3"},
    ),
    (errors.SettingError("FRONTEND_URL", "is not set"), 500, "Server misconfigured: FRONTEND_URL is not set.", {}),
    (
        errors.IdempotencyConflict("reused", "req_1"),
        409,
        "This Idempotency-Key was already used with a different request body.",
        {},
    ),
    (
        errors.ProviderRefused("refused", "req_2"),
        500,
        "Our request to the payment provider was wrong; it has been logged.",
        {},
    ),
    (errors.ProviderBusy("busy", "req_3"), 503, "Payment provider is busy; try again shortly.", {"Retry-After": "2"}),
    (errors.ProviderUnavailable("down", "req_4"), 502, "Payment provider is unavailable; try again shortly.", {}),
    (StoreUnavailable("down"), 503, "Payment store is unavailable; try again shortly.", {"Retry-After": "5"}),
    (HttpError(413, "Request body is larger than 10 bytes.", {"Connection": "close"}), 413, None, {}),
]


@pytest.mark.parametrize(
    ("error", "status", "message", "headers"), ANSWERS, ids=[a[0].__class__.__name__ for a in ANSWERS]
)
def test_each_error_is_answered_with_its_status_message_and_headers(error, status, message, headers):
    response = served(raising(error)).get("/")

    assert response.status_code == status
    assert response.json() == {"error": message or str(error)}
    for name, value in headers.items():
        assert response.headers[name] == value
    if "Retry-After" not in headers:
        assert "Retry-After" not in response.headers


def test_an_http_error_keeps_its_own_headers():
    response = served(raising(HttpError(413, "Too large.", {"Connection": "close"}))).get("/")

    assert response.headers["Connection"] == "close"


def test_an_unexpected_exception_is_a_json_500_that_quotes_nothing_of_it():
    response = served(raising(KeyError("buyer@example.com"))).get("/")

    assert response.status_code == 500
    assert response.json() == {"error": "Internal error; it has been logged."}
    assert response.headers["content-type"] == "application/json"


def test_an_unexpected_exception_is_reported_in_error_reportings_format(service_context, log_lines):
    log_lines()

    served(raising(KeyError("buyer@example.com"))).get("/", headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})

    [line] = request_lines(log_lines)
    assert line["@type"] == logs.REPORTED_ERROR
    assert line["severity"] == "ERROR"
    assert line["serviceContext"] == {"service": "payments-api", "version": "payments-api-00007"}
    assert line["message"].startswith("probe: unhandled KeyError\nTraceback (most recent call last):\n")
    assert line["message"].endswith("\nKeyError")
    assert (line["endpoint"], line["status"]) == ("probe", 500)
    assert line["logging.googleapis.com/trace"] == f"projects/hero-me/traces/{TRACE}"
    assert "buyer@example.com" not in json.dumps(line)


def test_an_answer_writes_one_info_line_with_the_handlers_notes(log_lines):
    log_lines()

    served(answering({}, session_id="cs_test_a1")).get("/", headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})

    [line] = request_lines(log_lines)
    assert line["severity"] == "INFO"
    assert line["message"] == "probe 200"
    assert (line["status"], line["session_id"]) == (200, "cs_test_a1")
    assert line["logging.googleapis.com/trace"] == TRACE
    assert "error" not in line


def quietly_answering(body: dict):
    async def handler(request, context):
        http.quiet(request)
        return body, 200

    return handler


def test_an_answer_the_handler_calls_quiet_writes_no_line(log_lines):
    log_lines()

    response = served(quietly_answering({"status": "open"})).get("/")

    assert response.json() == {"status": "open"}
    assert request_lines(log_lines) == []


def test_a_quiet_handlers_refusal_is_still_logged(log_lines):
    async def handler(request, context):
        http.quiet(request)
        raise errors.InvalidRequest("No.")

    log_lines()

    served(handler).get("/")

    [line] = request_lines(log_lines)
    assert (line["status"], line["severity"]) == (400, "WARNING")


def test_a_refusal_writes_a_warning_naming_the_error_class(log_lines):
    log_lines()

    served(raising(errors.InvalidRequest("buyer@example.com is not allowed."))).get("/")

    [line] = request_lines(log_lines)
    assert (line["severity"], line["message"], line["status"], line["error"]) == (
        "WARNING",
        "probe 400",
        400,
        "InvalidRequest",
    )
    assert "@type" not in line
    assert "buyer@example.com" not in json.dumps(line)


def test_an_outage_writes_an_error_line_with_stripes_request_id(log_lines):
    log_lines()

    served(raising(errors.ProviderUnavailable("down", "req_8xYz"))).get("/")

    [line] = request_lines(log_lines)
    assert (line["severity"], line["status"], line["error"]) == ("ERROR", 502, "ProviderUnavailable")
    assert line["stripe_request_id"] == "req_8xYz"
    assert "@type" not in line  # an outage passes; the alert on 5xx rates watches it


@pytest.mark.parametrize(("status", "severity"), [(500, "ERROR"), (499, "WARNING"), (400, "WARNING"), (399, "INFO")])
def test_a_lines_severity_follows_its_status(log_lines, status, severity):
    log_lines()

    served(raising(HttpError(status, "Refused."))).get("/")

    [line] = request_lines(log_lines)
    assert line["severity"] == severity


def test_an_error_without_a_stripe_request_id_names_none(log_lines):
    log_lines()

    served(raising(errors.ProviderUnavailable("down"))).get("/")

    [line] = request_lines(log_lines)
    assert "stripe_request_id" not in line


def test_a_setting_error_is_an_error_report_naming_the_setting(service_context, log_lines):
    log_lines()

    served(raising(errors.SettingError("STRIPE_SECRET_KEY", "was rejected by Stripe"))).get(
        "/", headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
    )

    [line] = request_lines(log_lines)
    assert line["logging.googleapis.com/trace"] == f"projects/hero-me/traces/{TRACE}"
    assert line["@type"] == logs.REPORTED_ERROR
    assert line["message"].startswith("probe 500: STRIPE_SECRET_KEY was rejected by Stripe\nTraceback")
    assert (line["status"], line["error"], line["setting"]) == (500, "SettingError", "STRIPE_SECRET_KEY")


def test_a_request_stripe_refused_is_an_error_report_with_stripes_request_id(service_context, log_lines):
    log_lines()

    served(raising(errors.ProviderRefused("Stripe refused our request (parameter_unknown)", "req_9"))).get("/")

    [line] = request_lines(log_lines)
    assert line["@type"] == logs.REPORTED_ERROR
    assert line["message"].startswith("probe 500: Stripe refused our request (parameter_unknown)\n")
    assert (line["error"], line["stripe_request_id"]) == ("ProviderRefused", "req_9")
    assert "setting" not in line


def test_an_error_to_an_allowed_origin_carries_cors_headers():
    response = served(raising(errors.InvalidRequest("No.")), cors=True).get("/", headers={"Origin": ORIGIN})

    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Vary"] == "Origin"


def test_an_error_without_cors_carries_no_cors_headers():
    response = served(raising(errors.InvalidRequest("No."))).get("/", headers={"Origin": ORIGIN})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_request_from_another_origin_is_a_403_before_the_handler(log_lines):
    called = []

    async def handler(request, context):
        called.append(request)
        return {}, 200

    response = served(handler, cors=True).get("/", headers={"Origin": "https://elsewhere.example"})

    assert response.status_code == 403
    assert response.json() == {"error": "Origin not allowed; add it to ALLOWED_ORIGINS."}
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert called == []


def test_a_preflight_from_another_origin_is_a_403_that_varies_by_origin():
    response = served(answering({}), cors=True).options(
        "/", headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"}
    )

    assert response.status_code == 403
    assert response.json() == {"error": "Origin not allowed; add it to ALLOWED_ORIGINS."}
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in response.headers


# -- reading a body ------------------------------------------------------------------------


def arriving(chunks: list[bytes], headers: dict | None = None, then: str = "end") -> Request:
    """A request whose body arrives in `chunks`; after them it ends, `hangs` or the client `disconnects`."""
    pending = list(chunks)

    async def receive():
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending) or then != "end"}
        if then == "hangs":
            await asyncio.sleep(60)
        if then == "disconnects":
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw_headers}, receive)


def read(request: Request, limit: int = 10) -> bytes:
    return asyncio.run(read_body(request, limit))


def test_a_body_of_exactly_the_limit_is_read():
    assert read(arriving([b"12345", b"67890"], {"Content-Length": "10"})) == b"1234567890"


def test_a_body_one_byte_over_the_limit_is_a_413_that_closes_the_connection():
    with pytest.raises(HttpError) as refused:
        read(arriving([b"12345", b"678901"]))

    assert refused.value.status == 413
    assert refused.value.message == "Request body is larger than 10 bytes."
    assert refused.value.headers == {"Connection": "close"}


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    with pytest.raises(HttpError) as refused:
        read(arriving([], {"Content-Length": "11"}, then="hangs"))

    assert (refused.value.status, refused.value.headers) == (413, {"Connection": "close"})


def test_a_declared_length_of_the_limit_is_read():
    assert read(arriving([b"1234567890"], {"Content-Length": "10"})) == b"1234567890"


@pytest.mark.parametrize("declared", ["ten", "-1", "1e3", ""])
def test_a_declared_length_that_is_not_a_number_is_a_400(declared):
    with pytest.raises(HttpError) as refused:
        read(arriving([b"1"], {"Content-Length": declared}))

    assert refused.value.status == 400
    assert refused.value.message == "Content-Length is not a number."
    assert refused.value.headers == {"Connection": "close"}


def test_a_body_that_stops_arriving_is_a_408_that_closes_the_connection(monkeypatch):
    monkeypatch.setattr(http, "BODY_TIMEOUT_SECONDS", 0.05)

    with pytest.raises(HttpError) as refused:
        read(arriving([b"123"], then="hangs"))

    assert refused.value.status == 408
    assert refused.value.message == "Request body did not arrive within 0.05 seconds."
    assert refused.value.headers == {"Connection": "close"}


def test_a_client_that_disconnects_before_its_body_arrives_is_a_400():
    with pytest.raises(HttpError) as refused:
        read(arriving([b"123"], then="disconnects"))

    assert (refused.value.status, refused.value.message) == (400, "The connection closed before the body arrived.")


# -- the client's address --------------------------------------------------------------------


def from_peer(peer: str | None, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": headers,
        "client": (peer, 50000) if peer else None,
    }
    return Request(scope)


def test_the_client_is_the_last_forwarded_address_behind_one_proxy():
    assert client_ip(from_peer("169.254.1.1", "198.51.100.9, 203.0.113.7"), 1) == "203.0.113.7"


def test_behind_two_proxies_the_client_is_the_second_address_from_the_end():
    assert client_ip(from_peer("169.254.1.1", "198.51.100.9, 203.0.113.7, 35.191.0.1"), 2) == "203.0.113.7"


def test_fewer_forwarded_addresses_than_trusted_proxies_fall_back_to_the_peer():
    assert client_ip(from_peer("169.254.1.1", "203.0.113.7"), 2) == "169.254.1.1"


def test_without_x_forwarded_for_the_client_is_the_peer():
    assert client_ip(from_peer("203.0.113.7"), 1) == "203.0.113.7"


def test_with_no_trusted_proxy_forwarded_addresses_are_ignored():
    assert client_ip(from_peer("203.0.113.7", "198.51.100.9"), 0) == "203.0.113.7"


def test_blank_forwarded_entries_are_skipped():
    assert client_ip(from_peer("169.254.1.1", "203.0.113.7, , "), 1) == "203.0.113.7"


def test_a_request_with_no_known_address_is_unknown():
    assert client_ip(from_peer(None), 1) == "unknown"


# -- the errors the table maps ---------------------------------------------------------------


def test_a_rate_limit_carries_the_seconds_to_wait():
    error = errors.RateLimited(7)

    assert (error.retry_after, str(error)) == (7, "rate limited for 7 s")


def test_a_check_that_could_not_be_made_may_be_retried_after_five_seconds_unless_told():
    assert errors.CheckUnavailable("keys unreachable").retry_after == 5
    assert str(errors.CheckUnavailable("keys unreachable")) == "keys unreachable"


def test_a_setting_error_names_the_setting_and_its_problem():
    error = errors.SettingError("FRONTEND_URL", "is not set")

    assert (error.name, error.problem, str(error)) == ("FRONTEND_URL", "is not set", "FRONTEND_URL is not set")


def test_an_http_error_reads_as_its_message():
    assert str(HttpError(413, "Too large.")) == "Too large."
    assert HttpError(413, "Too large.").headers == {}


@pytest.mark.parametrize("raw", [b"not json", b"NaN", b'{"amount": -Infinity}'])
def test_a_body_that_is_not_json_is_named_the_request_body_unless_told(raw):
    with pytest.raises(InvalidRequest) as refused:
        parse_json(raw)

    assert str(refused.value) == "Request body is not JSON."
