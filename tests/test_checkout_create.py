"""POST /api/checkout/embedded-session, through the real app and the real stripe SDK."""

from __future__ import annotations

import json

import pytest

from checkout import create
from tests.conftest import FRONTEND_URL, TEST_KEY

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


def test_metadata_at_stripes_limits_is_accepted(client):
    fifty_keys = {f"k{i:02d}".ljust(40, "x"): "v" for i in range(50)}
    longest_value = {"note": "v" * 500}

    assert client.post(PATH, json={"metadata": fifty_keys}).status_code == 200
    assert client.post(PATH, json={"metadata": longest_value}).status_code == 200


def test_body_over_16_kib_is_refused_with_413(client, standin):
    response = client.post(PATH, content=b"{" + b" " * (16 * 1024) + b"}", headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert "error" in response.json()
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
    assert sent == create.scoped_idempotency_key("k" * 255, "203.0.113.7")
    assert "k" * 255 not in sent and len(sent) <= 255


def test_same_idempotency_key_with_another_body_is_a_409(client):
    headers = {"Idempotency-Key": "click-456"}
    client.post(PATH, json={"metadata": {"a": "b"}}, headers=headers)

    response = client.post(PATH, json={"metadata": {"a": "c"}}, headers=headers)

    assert response.status_code == 409
    assert "Idempotency-Key" in response.json()["error"]


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9".encode("utf-8")], ids=["empty", "256 chars", "non-ASCII"])
def test_malformed_idempotency_key_is_refused(client, standin, key):
    response = client.post(PATH, json={}, headers={"Idempotency-Key": key})

    assert response.status_code == 400
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
