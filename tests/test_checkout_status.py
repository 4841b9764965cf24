"""GET /api/checkout/session-status, through the real app and the real stripe SDK."""

from __future__ import annotations

import pytest

PATH = "/api/checkout/session-status"


def status_of(client, session_id):
    return client.get(PATH, params={"session_id": session_id})


def test_open_session_is_open_and_unpaid(client, session_id):
    response = status_of(client, session_id)

    assert response.status_code == 200
    assert response.json() == {"status": "open", "payment_status": "unpaid", "outcome": "open"}


def test_paid_session_is_complete_and_paid(client, standin, session_id):
    standin.complete(session_id, payment_status="paid")

    assert status_of(client, session_id).json() == {"status": "complete", "payment_status": "paid", "outcome": "paid"}


def test_delayed_payment_is_complete_but_unpaid(client, standin, session_id):
    standin.complete(session_id, payment_status="unpaid")

    assert status_of(client, session_id).json() == {
        "status": "complete",
        "payment_status": "unpaid",
        "outcome": "processing",
    }


def test_expired_session_is_expired(client, standin, session_id):
    standin.expire(session_id)

    assert status_of(client, session_id).json() == {
        "status": "expired",
        "payment_status": "unpaid",
        "outcome": "expired",
    }


def test_missing_session_id_is_a_400(client, standin):
    response = client.get(PATH)

    assert response.status_code == 400
    assert "session_id" in response.json()["error"]
    assert standin.request_count == 0


@pytest.mark.parametrize(
    "value",
    [
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "cs_test_",
        "cs_test_abc/../../v1/customers",
        "cs_test_abc?expand[]=customer",
        "cs_test_abc%2F..",
        "cs_test_" + "a" * 201,
        "cs_prod_abc",
        "cs_test_abc\n",
        "cs_test_abc\r\n",
        "cs_test_abc\x00",
    ],
)
def test_an_id_that_is_not_a_checkout_session_never_reaches_stripe(client, standin, value):
    response = status_of(client, value)

    assert response.status_code == 400
    assert standin.request_count == 0


def test_a_live_session_id_under_a_test_key_is_a_400(client, standin):
    response = status_of(client, "cs_live_a1B2c3D4e5F6g7H8i9J0")

    assert response.status_code == 400
    assert "live" in response.json()["error"]
    assert standin.request_count == 0


def test_a_test_session_id_under_a_live_key_is_a_400(client, standin, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_" + "x" * 24)

    response = status_of(client, "cs_test_a1B2c3D4e5F6g7H8i9J0")

    assert response.status_code == 400
    assert standin.request_count == 0


def test_unknown_session_is_a_404(client):
    response = status_of(client, "cs_test_a1B2c3D4e5F6g7H8i9J0")

    assert response.status_code == 404
    assert response.json() == {"error": "No such checkout session."}


@pytest.mark.parametrize("stripe_status", [503, 409], ids=["failing", "keeping the session locked"])
def test_stripe_failing_or_keeping_the_session_locked_is_a_502(client, standin, session_id, stripe_status):
    standin.fail_next(10, status=stripe_status)

    response = status_of(client, session_id)

    assert response.status_code == 502
    assert response.json() == {"error": "Payment provider is unavailable; try again shortly."}


def test_post_is_a_405_naming_the_allowed_methods(client):
    response = client.post(PATH)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, OPTIONS"


def test_the_deployed_function_answers_like_the_api(function_client, client, session_id):
    response = function_client("session_status").get("/", params={"session_id": session_id})

    assert response.json() == {"status": "open", "payment_status": "unpaid", "outcome": "open"}


def test_polling_an_open_session_writes_no_log_line(client, session_id, log_lines):
    log_lines()

    assert status_of(client, session_id).status_code == 200

    assert [line for line in log_lines() if line.get("endpoint") == "session_status"] == []


def test_a_final_outcome_is_logged_with_its_session(client, standin, session_id, log_lines):
    standin.complete(session_id, payment_status="paid")
    log_lines()

    status_of(client, session_id)

    (line,) = [line for line in log_lines() if line.get("endpoint") == "session_status"]
    assert (line["session_id"], line["outcome"], line["status"]) == (session_id, "paid", 200)


def test_the_request_line_says_where_the_answer_came_from(client, standin, session_id, log_lines):
    standin.complete(session_id, payment_status="paid")
    log_lines()

    status_of(client, session_id)

    [line] = [entry for entry in log_lines() if entry.get("endpoint") == "session_status"]
    assert (line["severity"], line["message"], line["status"]) == ("INFO", "session_status 200", 200)
    assert (line["session_id"], line["outcome"], line["answered_from"]) == (session_id, "paid", "stripe")


def test_a_refused_status_request_is_always_logged(client, log_lines):
    log_lines()

    status_of(client, "cs_test_")

    (line,) = [line for line in log_lines() if line.get("endpoint") == "session_status"]
    assert (line["status"], line["severity"]) == (400, "WARNING")


def test_a_request_stripe_refuses_is_a_500_that_says_it_is_ours_not_a_404(client, standin, session_id):
    standin.fail_next(1, status=400)

    response = status_of(client, session_id)

    assert response.status_code == 500
    assert response.json() == {"error": "Our request to the payment provider was wrong; it has been logged."}


def test_an_instance_says_once_where_payment_records_are_stored(client, sqlite_payments, session_id, log_lines):
    log_lines()

    status_of(client, session_id)
    status_of(client, session_id)

    stored_in = [line for line in log_lines() if line.get("message", "").startswith("Payment records")]
    assert len(stored_in) == 1
    assert stored_in[0]["message"].startswith("Payment records are stored in SQLite")
    assert stored_in[0]["severity"] == "INFO"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "Missing query parameter: session_id."),
        ("pi_3MtwBw", "session_id is not a Checkout Session id (cs_test_… or cs_live_…)."),
        ("cs_live_a1B2c3", "session_id is a live-mode session but this server uses test mode."),
    ],
)
def test_each_refused_session_id_says_why(client, standin, value, message):
    response = client.get(PATH, params={"session_id": value} if value else {})

    assert response.json() == {"error": message}
