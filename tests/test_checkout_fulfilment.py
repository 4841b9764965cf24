"""Fulfilment from the return page: GET /api/checkout/session-status records payments too.

Stripe advises fulfilling from both the webhook and the page the buyer
returns to, so a payment is on record even when the webhook is late or never
comes. A session that can no longer change (paid, or expired) is answered
from the store without asking Stripe again. Runs against both stores.
"""

from __future__ import annotations

from tests.conftest import TEST_KEY

STATUS_PATH = "/api/checkout/session-status"
CREATE_PATH = "/api/checkout/embedded-session"


def status(test_client, session_id: str, path: str = STATUS_PATH) -> dict:
    response = test_client.get(path, params={"session_id": session_id})
    assert response.status_code == 200
    return response.json()


def test_a_payment_completed_at_stripe_is_recorded_when_the_buyer_asks(client, payments, standin, session_id):
    standin.complete(session_id)  # and the webhook never arrives

    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "paid"}

    record = payments.record(session_id)
    assert (record["status"], record["payment_status"]) == ("complete", "paid")
    assert record["paid_at"]
    assert record["amount_total"] == 200
    assert record["currency"] == "usd"
    assert record["customer_email"] == "buyer@example.com"
    assert record["metadata"] == {"board": "feelings"}
    assert record["payment_intent"] == standin.session(session_id)["payment_intent"]
    assert record["last_event_id"] is None
    assert payments.event_ids() == []


def test_asking_again_about_a_paid_session_makes_no_stripe_call(client, payments, standin, session_id):
    standin.complete(session_id)
    status(client, session_id)
    calls = standin.request_count

    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "paid"}
    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "paid"}
    assert standin.request_count == calls


def test_a_payment_recorded_by_the_webhook_is_answered_without_asking_stripe(
    client, payments, standin, session_id, deliver
):
    (completed,) = standin.complete(session_id)
    assert deliver(completed).status_code == 200
    calls = standin.request_count

    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "paid"}
    assert standin.request_count == calls


def test_an_expired_session_recorded_by_the_webhook_is_answered_without_asking_stripe(
    client, payments, standin, session_id, deliver
):
    (expired,) = standin.expire(session_id)
    assert deliver(expired).status_code == 200
    calls = standin.request_count

    assert status(client, session_id) == {"status": "expired", "payment_status": "unpaid", "outcome": "expired"}
    assert standin.request_count == calls


def test_an_expired_session_not_yet_recorded_is_answered_from_stripe(client, payments, standin, session_id):
    standin.expire(session_id)
    calls = standin.request_count

    assert status(client, session_id) == {"status": "expired", "payment_status": "unpaid", "outcome": "expired"}
    assert standin.request_count == calls + 1


def test_an_open_session_always_asks_stripe_and_is_not_recorded(client, payments, standin, session_id):
    for poll in range(1, 4):
        calls = standin.request_count

        assert status(client, session_id) == {"status": "open", "payment_status": "unpaid", "outcome": "open"}
        assert standin.request_count == calls + 1, f"poll {poll} asked Stripe"

    assert payments.record(session_id) is None


def test_a_delayed_payment_is_recorded_unpaid_and_asked_about_until_it_is_paid(client, payments, standin, session_id):
    standin.complete(session_id, payment_status="unpaid")

    assert status(client, session_id) == {"status": "complete", "payment_status": "unpaid", "outcome": "processing"}
    record = payments.record(session_id)
    assert (record["status"], record["payment_status"], record["paid_at"]) == ("complete", "unpaid", None)

    calls = standin.request_count
    assert status(client, session_id) == {"status": "complete", "payment_status": "unpaid", "outcome": "processing"}
    assert standin.request_count == calls + 1

    standin.async_payment(session_id, succeeded=True)  # its webhook has not arrived yet
    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "paid"}
    assert payments.record(session_id)["payment_status"] == "paid"

    calls = standin.request_count
    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "paid"}
    assert standin.request_count == calls


def test_the_webhook_arriving_after_the_return_page_keeps_one_paid_record(
    client, payments, standin, session_id, deliver
):
    (completed,) = standin.complete(session_id)
    status(client, session_id)
    first = payments.record(session_id)

    response = deliver(completed)

    assert response.json() == {"received": True, "duplicate": False}
    record = payments.record(session_id)
    assert (record["status"], record["payment_status"]) == ("complete", "paid")
    assert record["paid_at"] == first["paid_at"], "the time of payment is kept from the first record"
    assert record["last_event_id"] == completed["id"]
    assert payments.event_ids() == [completed["id"]]


def test_the_return_page_after_a_delayed_payment_webhook_keeps_the_record_paid(
    client, payments, standin, session_id, deliver
):
    (completed,) = standin.complete(session_id, payment_status="unpaid")
    (succeeded,) = standin.async_payment(session_id, succeeded=True)
    deliver(completed)
    status(client, session_id)  # Stripe already says paid; the record follows
    deliver(succeeded)

    record = payments.record(session_id)
    assert (record["status"], record["payment_status"]) == ("complete", "paid")
    assert sorted(payments.event_ids()) == sorted([completed["id"], succeeded["id"]])


def test_the_deployed_status_function_records_payments_too(function_client, payments, standin, session_id):
    standin.complete(session_id)

    assert status(function_client("session_status"), session_id, "/") == {
        "status": "complete",
        "payment_status": "paid",
        "outcome": "paid",
    }
    assert payments.record(session_id)["payment_status"] == "paid"


def test_a_store_outage_still_answers_the_buyer_from_stripe_and_logs_an_error(
    new_client, standin, session_id, tmp_path, monkeypatch, log_lines
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # the store's folder cannot be created: the store cannot open
    monkeypatch.setenv("PAYMENTS_STORE", f"sqlite:///{blocker / 'payments.db'}")
    client = new_client()
    standin.complete(session_id)
    log_lines()
    calls = standin.request_count

    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "paid"}
    assert standin.request_count == calls + 1

    lines = log_lines()
    errors = [(line["message"], line["endpoint"], line["error"]) for line in lines if line.get("severity") == "ERROR"]
    assert errors == [
        ("Payment store read failed; asking Stripe.", "session_status", "StoreUnavailable"),
        ("Could not record the settled session.", "session_status", "StoreUnavailable"),
    ]
    assert [line["status"] for line in lines if line.get("message") == "session_status 200"] == [200]


def test_status_answers_and_logs_never_carry_secrets(client, payments, standin, session_id, log_lines):
    client_secret = standin.session(session_id)["client_secret"]
    standin.complete(session_id)

    answers = [client.get(STATUS_PATH, params={"session_id": session_id}) for _ in range(2)]

    assert [set(a.json()) for a in answers] == [{"status", "payment_status", "outcome"}] * 2
    seen = [a.text for a in answers] + [str(line) for line in log_lines()]
    for secret in (client_secret, TEST_KEY):
        assert not [text for text in seen if secret in text]


def test_a_failed_delayed_payment_is_failed_from_stripe_before_its_webhook(client, payments, standin, session_id):
    standin.complete(session_id, payment_status="unpaid")
    standin.async_payment(session_id, succeeded=False)  # its webhook has not arrived yet

    assert status(client, session_id) == {"status": "complete", "payment_status": "unpaid", "outcome": "failed"}
    assert payments.record(session_id)["outcome"] == "failed"

    calls = standin.request_count
    assert status(client, session_id)["outcome"] == "failed"
    assert standin.request_count == calls  # failed is final: answered from the store


def test_a_refund_recorded_by_the_webhook_is_answered_without_asking_stripe(
    client, payments, standin, session_id, deliver
):
    for event in standin.complete(session_id, payment_status="paid") + standin.refund_payment(session_id):
        assert deliver(event).status_code == 200
    calls = standin.request_count

    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "refunded"}
    assert standin.request_count == calls


def test_a_settled_session_that_fails_our_checks_is_answered_logged_and_not_recorded(
    client, sqlite_payments, standin, session_id, log_lines
):
    standin.complete(session_id, customer_email="b" * 600 + "@example.com")  # longer than any address Stripe keeps
    log_lines()

    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "paid"}

    errors = [(line["message"], line["error"]) for line in log_lines() if line.get("severity") == "ERROR"]
    assert errors == [("Stripe's session did not pass our checks; not recorded.", "InvalidRequest")]
    assert sqlite_payments.record(session_id) is None


def test_a_recorded_payment_is_answered_from_the_store_and_says_so(
    client, sqlite_payments, standin, session_id, log_lines
):
    standin.complete(session_id)
    status(client, session_id)
    log_lines()

    status(client, session_id)

    [line] = [entry for entry in log_lines() if entry.get("endpoint") == "session_status"]
    assert (line["session_id"], line["outcome"], line["answered_from"]) == (session_id, "paid", "store")


def test_a_store_failure_line_carries_the_requests_trace(
    new_client, standin, session_id, tmp_path, monkeypatch, log_lines
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PAYMENTS_STORE", f"sqlite:///{blocker / 'payments.db'}")
    client = new_client()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    log_lines()

    client.get(
        STATUS_PATH, params={"session_id": session_id}, headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}
    )

    [failure] = [line for line in log_lines() if line.get("message") == "Payment store read failed; asking Stripe."]
    assert failure["logging.googleapis.com/trace"] == trace


def test_an_expired_session_read_from_stripe_is_recorded(client, sqlite_payments, standin, session_id):
    standin.expire(session_id)

    status(client, session_id)

    assert sqlite_payments.record(session_id)["outcome"] == "expired"


def test_a_refund_known_before_the_sessions_events_shows_when_the_buyer_asks(
    client, sqlite_payments, standin, session_id, deliver
):
    standin.complete(session_id)
    for event in standin.refund_payment(session_id):
        if event["type"] == "charge.refunded":
            assert deliver(event).status_code == 200  # the session's own events have not arrived

    assert status(client, session_id) == {"status": "complete", "payment_status": "paid", "outcome": "refunded"}
