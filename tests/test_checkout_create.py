"""POST /api/checkout/embedded-session, through the real app and the real stripe SDK."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checkout import create
from checkout.create import LABEL_CHARS, parse_body
from common.errors import InvalidRequest
from common.stripe_rules import METADATA_KEY_MAX_CHARS, METADATA_MAX_KEYS, METADATA_VALUE_MAX_CHARS
from tests.conftest import FRONTEND_URL, ROOT, TEST_KEY
from tests.test_http import ANY_TEXT, JSON_VALUES, strings_in

PATH = "/api/checkout/embedded-session"


def created_params(standin) -> dict:
    """The parameters of the one create call the stand-in received."""
    creates = [r for r in standin.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"]
    assert len(creates) == 1
    return creates[0].params


def test_answers_only_the_client_secret(client):
    response = client.post(PATH, json={})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"client_secret"}
    assert body["client_secret"].startswith("cs_test_") and "_secret_" in body["client_secret"]


def test_empty_body_is_accepted(client):
    assert client.post(PATH).status_code == 200


def test_whitespace_only_body_is_not_json(client):
    response = client.post(PATH, content=b"\t\n ", headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {"error": "Request body is not JSON."}


def test_session_is_the_two_dollar_board_in_embedded_mode(client, standin):
    client.post(PATH, json={})

    params = created_params(standin)
    assert params["mode"] == "payment"
    assert params["ui_mode"] == "embedded_page"


def test_line_item_is_one_board_at_200_cents(client, standin):
    client.post(PATH, json={})

    (item,) = created_params(standin)["line_items"]
    assert item["quantity"] in ("1", 1)
    assert item["price_data"]["currency"] == "usd"
    assert item["price_data"]["unit_amount"] in ("200", 200)
    assert item["price_data"]["product_data"] == {
        "name": "Hero Me Feelings - Personalized AAC Board",
        "description": "AI-powered personalized feelings board with 24+ custom images",
    }


def test_return_url_keeps_stripes_placeholder(client, standin):
    client.post(PATH, json={})

    assert created_params(standin)["return_url"] == FRONTEND_URL + "/hero-me?session_id={CHECKOUT_SESSION_ID}"


def test_return_path_is_a_setting(client, standin, monkeypatch):
    monkeypatch.setenv("CHECKOUT_RETURN_PATH", "/done")

    client.post(PATH, json={})

    assert created_params(standin)["return_url"] == FRONTEND_URL + "/done?session_id={CHECKOUT_SESSION_ID}"


def test_metadata_and_customer_email_are_passed_to_stripe(client, standin):
    response = client.post(PATH, json={"metadata": {"child": "Sam", "board": "v2"}, "customer_email": "a@example.com"})

    assert response.status_code == 200
    params = created_params(standin)
    assert params["metadata"] == {"child": "Sam", "board": "v2"}
    assert params["customer_email"] == "a@example.com"


@pytest.mark.parametrize(
    "body, field",
    [
        ("not json", "JSON"),
        ("[1, 2]", "object"),
        ('"text"', "object"),
        (json.dumps({"price": 1}), "price"),
        (json.dumps({"metadata": "x"}), "metadata"),
        (json.dumps({"metadata": {"a": 1}}), "metadata.a"),
        (json.dumps({"metadata": {f"k{i}": "v" for i in range(51)}}), "metadata"),
        (json.dumps({"metadata": {"k" * 41: "v"}}), "metadata"),
        (json.dumps({"metadata": {"a[b]": "v"}}), "metadata"),
        (json.dumps({"metadata": {"": "v"}}), "metadata"),
        (json.dumps({"metadata": {"a": "v" * 501}}), "metadata.a"),
        (json.dumps({"customer_email": "not-an-email"}), "customer_email"),
        (json.dumps({"customer_email": 42}), "customer_email"),
    ],
)
def test_bad_body_is_refused_without_calling_stripe(client, standin, body, field):
    response = client.post(PATH, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert field in response.json()["error"]
    assert standin.request_count == 0


@pytest.mark.parametrize(
    "body",
    [
        r'{"metadata": {"note": "\ud800"}}',
        r'{"metadata": {"\udfff": "x"}}',
        r'{"\ud800": 1}',
        r'{"customer_email": "a\udbff@example.com"}',
        r'{"metadata": {"note": "\ude00\ud83d"}}',
    ],
    ids=["in a metadata value", "in a metadata key", "in an unknown key", "in the email", "a pair in the wrong order"],
)
def test_a_lone_surrogate_anywhere_is_a_400_before_stripe(client, standin, body, log_lines):
    response = client.post(PATH, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert "Unicode" in response.json()["error"]
    assert standin.request_count == 0
    assert [line["status"] for line in log_lines() if line.get("endpoint") == "create_embedded_session"] == [400]


def test_an_escaped_surrogate_pair_is_text_and_is_accepted(client, standin):
    response = client.post(
        PATH, content=r'{"metadata": {"mood": "\ud83d\ude00"}}', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200
    assert created_params(standin)["metadata"] == {"mood": "\U0001f600"}


@pytest.mark.parametrize(
    "body",
    ["[" * 16000, "[" * 8000 + "]" * 8000, '{"m":' * 2500 + "1" + "}" * 2500],
    ids=["unclosed arrays", "closed arrays", "objects"],
)
def test_json_nested_too_deeply_is_a_400(client, standin, body):
    assert len(body) <= 16 * 1024

    response = client.post(PATH, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]
    assert standin.request_count == 0


@pytest.mark.parametrize("body", ['{"metadata": NaN}', '{"metadata": {"a": Infinity}}', "-Infinity"])
def test_nan_and_infinity_are_not_json(client, standin, body):
    response = client.post(PATH, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]


PRIVATE_TEXT = "child: Sam Smith, DOB 2019-01-02"


@pytest.mark.parametrize(
    "body",
    [
        {PRIVATE_TEXT: "x"},
        {"metadata": {PRIVATE_TEXT: 1}},
        {"metadata": {PRIVATE_TEXT: "v" * 501}},
        {"metadata": {PRIVATE_TEXT + " and more": "v"}},
        {"customer_email": PRIVATE_TEXT},
    ],
    ids=["unknown field", "value not a string", "value too long", "key too long", "not an email"],
)
def test_a_refusal_quotes_no_client_text_in_its_answer_or_the_log(client, standin, log_lines, body):
    log_lines()

    response = client.post(PATH, json=body)

    assert response.status_code == 400
    logged = json.dumps(log_lines())
    for fragment in ("Sam", "Smith", "2019-01-02"):
        assert fragment not in response.text
        assert fragment not in logged


def test_a_key_is_named_by_its_position_and_a_short_prefix(client):
    response = client.post(PATH, json={"metadata": {"board": "v1", "child_name_and_age": 7}})

    assert response.json()["error"] == "metadata.child_na... (entry 2) must be a string."


def test_a_16_kib_unknown_key_gives_a_short_answer_and_log_line(client, log_lines):
    log_lines()

    response = client.post(PATH, content=json.dumps({"k" * 16000: 1}), headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert len(response.text) < 200
    assert all(len(json.dumps(line)) < 500 for line in log_lines())


def test_a_request_stripe_refuses_is_a_500_that_says_it_is_ours(client, standin, log_lines):
    standin.fail_next(1, status=400)

    response = client.post(PATH, json={})

    assert response.status_code == 500
    assert response.json() == {"error": "Our request to the payment provider was wrong; it has been logged."}
    (line,) = [entry for entry in log_lines() if entry.get("endpoint") == "create_embedded_session"]
    assert line["error"] == "ProviderRefused"
    assert line["stripe_request_id"].startswith("req_")


def test_metadata_at_stripes_limits_is_accepted(client):
    fifty_keys = {f"k{i:02d}".ljust(40, "x"): "v" for i in range(50)}
    longest_value = {"note": "v" * 500}

    assert client.post(PATH, json={"metadata": fifty_keys}).status_code == 200
    assert client.post(PATH, json={"metadata": longest_value}).status_code == 200


def json_body_of(size: int) -> bytes:
    """An empty JSON object padded with spaces to `size` bytes."""
    return b"{" + b" " * (size - 2) + b"}"


def test_a_body_of_exactly_16_kib_is_accepted(client):
    response = client.post(PATH, content=json_body_of(16 * 1024), headers={"Content-Type": "application/json"})

    assert response.status_code == 200


def test_a_body_one_byte_over_16_kib_is_refused_with_413(client, standin):
    response = client.post(PATH, content=json_body_of(16 * 1024 + 1), headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json() == {"error": "Request body is larger than 16384 bytes."}
    assert standin.request_count == 0


def test_same_idempotency_key_returns_the_same_session(client, standin):
    headers = {"Idempotency-Key": "click-123"}

    first = client.post(PATH, json={"metadata": {"a": "b"}}, headers=headers).json()
    second = client.post(PATH, json={"metadata": {"a": "b"}}, headers=headers).json()

    assert first == second
    assert len(standin.sessions) == 1


def test_the_same_idempotency_key_from_two_clients_gets_two_sessions(client, standin):
    """Stripe's keys are account-wide; ours are scoped to the caller, so nobody can fetch another's session."""
    first = client.post(PATH, json={}, headers={"Idempotency-Key": "click-123", "X-Forwarded-For": "203.0.113.7"})
    other = client.post(PATH, json={}, headers={"Idempotency-Key": "click-123", "X-Forwarded-For": "198.51.100.9"})
    retry = client.post(PATH, json={}, headers={"Idempotency-Key": "click-123", "X-Forwarded-For": "203.0.113.7"})

    assert first.json() != other.json()
    assert retry.json() == first.json()
    assert len(standin.sessions) == 2


def test_the_key_sent_to_stripe_is_scoped_and_within_stripes_limit(client, standin):
    client.post(PATH, json={}, headers={"Idempotency-Key": "k" * 255, "X-Forwarded-For": "203.0.113.7"})

    (sent,) = [r.headers.get("Idempotency-Key") for r in standin.requests if r.path == "/v1/checkout/sessions"]
    assert sent == hashlib.sha256(("203.0.113.7\n\n" + "k" * 255).encode()).hexdigest()  # client, no app id, key
    assert "k" * 255 not in sent and len(sent) <= 255


def test_same_idempotency_key_with_another_body_is_a_409(client):
    headers = {"Idempotency-Key": "click-456"}
    client.post(PATH, json={"metadata": {"a": "b"}}, headers=headers)

    response = client.post(PATH, json={"metadata": {"a": "c"}}, headers=headers)

    assert response.status_code == 409
    assert "Idempotency-Key" in response.json()["error"]


def test_an_idempotency_key_of_255_characters_is_accepted(client, standin):
    response = client.post(PATH, json={}, headers={"Idempotency-Key": "k" * 255})

    assert response.status_code == 200
    assert len(standin.sessions) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9".encode("utf-8")], ids=["empty", "256 chars", "non-ASCII"])
def test_malformed_idempotency_key_is_refused(client, standin, key):
    response = client.post(PATH, json={}, headers={"Idempotency-Key": key})

    assert response.status_code == 400
    assert response.json() == {"error": "Idempotency-Key must be 1-255 printable ASCII characters."}
    assert standin.request_count == 0


def test_a_passing_stripe_failure_is_retried(client, standin):
    standin.fail_next(1, status=500)

    assert client.post(PATH, json={}).status_code == 200


def test_stripe_failing_after_retries_is_a_502(client, standin):
    standin.fail_next(10, status=500)

    response = client.post(PATH, json={})

    assert response.status_code == 502
    assert "error" in response.json()


def test_stripe_unreachable_is_a_502(client, monkeypatch):
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")

    response = client.post(PATH, json={})

    assert response.status_code == 502


def test_stripe_rate_limit_is_a_503_with_retry_after(client, standin):
    standin.fail_next(10, status=429)

    response = client.post(PATH, json={})

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("setting", ["STRIPE_SECRET_KEY", "FRONTEND_URL"])
def test_missing_setting_is_a_500_naming_it(client, monkeypatch, standin, setting):
    monkeypatch.delenv(setting)

    response = client.post(PATH, json={})

    assert response.status_code == 500
    assert setting in response.json()["error"]
    assert standin.request_count == 0


def test_a_key_stripe_rejects_is_a_500_that_does_not_show_it(client, standin):
    standin.fail_next(1, status=401)

    response = client.post(PATH, json={})

    assert response.status_code == 500
    assert "STRIPE_SECRET_KEY" in response.json()["error"]
    assert TEST_KEY not in response.text


def test_no_secret_reaches_a_response_or_a_log(client, standin, log_lines):
    ok = client.post(PATH, json={})
    standin.fail_next(10, status=500)
    failed = client.post(PATH, json={})

    client_secret = ok.json()["client_secret"]
    logged = json.dumps(log_lines())
    assert TEST_KEY not in ok.text + failed.text
    assert TEST_KEY not in logged
    assert client_secret not in logged


def test_each_request_writes_one_structured_line_with_its_trace(client, log_lines, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "hero-me")
    log_lines()

    client.post(PATH, json={}, headers={"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"})

    (line,) = [entry for entry in log_lines() if entry.get("endpoint") == "create_embedded_session"]
    assert line["severity"] == "INFO"
    assert line["status"] == 200
    assert line["logging.googleapis.com/trace"] == "projects/hero-me/traces/105445aa7843bc8bf206b12000100000"
    assert line["logging.googleapis.com/spanId"] == "0000000000000001"
    assert line["logging.googleapis.com/trace_sampled"] is True


def test_get_is_a_405_naming_the_allowed_methods(client):
    response = client.get(PATH)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert "error" in response.json()


def test_the_deployed_function_answers_like_the_api(function_client):
    response = function_client("create_embedded_session").post("/", json={})

    assert response.status_code == 200
    assert set(response.json()) == {"client_secret"}


# -- properties of the body validator ---------------------------------------------------

# Text a message may hold because we wrote it (Hypothesis tries the code's own string constants as input).
OUR_WORDS = "".join((ROOT / path).read_text() for path in ("checkout/create.py", "common/http.py"))
KEYS = st.sampled_from(["metadata", "customer_email"]) | ANY_TEXT
METADATA = st.dictionaries(st.text(max_size=45) | ANY_TEXT, st.text(max_size=510) | JSON_VALUES, max_size=55)
BODIES = st.dictionaries(KEYS, METADATA | st.emails() | JSON_VALUES, max_size=3) | JSON_VALUES


@settings(deadline=None)  # the first email imports email_validator
@given(BODIES)
def test_a_body_is_accepted_within_stripes_limits_or_refused_quoting_nothing(body):
    raw = json.dumps(body).encode("ascii")

    try:
        fields = parse_body(raw)
    except InvalidRequest as refused:
        message = str(refused)
        assert len(message) < 120
        quoted = [s for s in strings_in(body) if len(s) > LABEL_CHARS and s in message and s not in OUR_WORDS]
        assert not quoted
        return
    assert set(fields) <= {"metadata", "customer_email"}
    metadata = fields.get("metadata", {})
    assert len(metadata) <= METADATA_MAX_KEYS
    for key, value in metadata.items():
        assert 1 <= len(key) <= METADATA_KEY_MAX_CHARS and "[" not in key and "]" not in key
        assert isinstance(value, str) and len(value) <= METADATA_VALUE_MAX_CHARS
    json.dumps(fields, ensure_ascii=False).encode("utf-8")  # nothing Stripe's form encoding would choke on


# -- each refusal of the body, and how it names a key -------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (["metadata"], "Request body must be a JSON object."),
        ({"metadata": ["board"]}, "metadata must be an object of string values."),
        ({"metadata": {"a[b": "v"}}, "metadata keys must be 1-40 characters without '[' or ']' (entry 1)."),
        ({"metadata": {"ok": "v", "a]b": "v"}}, "metadata keys must be 1-40 characters without '[' or ']' (entry 2)."),
        ({"customer_email": ["buyer@example.com"]}, "customer_email must be a string."),
        ({"customer_email": "buyer@"}, "customer_email is not a valid email address."),
    ],
)
def test_each_refusal_says_what_to_fix(body, message):
    with pytest.raises(InvalidRequest) as refused:
        parse_body(json.dumps(body).encode())

    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("key", "shown"),
    [("abcdefgh", "abcdefgh"), ("abcdefghi", "abcdefgh..."), ("née_x-1", "n?e_x-1"), ("a b/c", "a?b?c")],
)
def test_a_key_is_shown_as_its_first_eight_ascii_letters_digits_underscores_or_hyphens(key, shown):
    assert create.label(key) == shown


def test_the_key_sent_to_stripe_is_scoped_to_the_app_too():
    assert (
        create.scoped_idempotency_key("k", "203.0.113.7", "1:123:web:abc")
        == hashlib.sha256(b"203.0.113.7\n1:123:web:abc\nk").hexdigest()
    )
