"""POST /webhook: Stripe's events, through the real functions-framework app.

Events are the ones the Stripe stand-in emits as a session is paid, settles
or expires, or built with `tests.support.stripe_objects` where a test needs a
combination Stripe would not produce on its own. Every test that writes
payments runs against both stores: an SQLite file and the Firestore emulator.
"""

from __future__ import annotations

import itertools
import json
import socket
import time

import pytest

from common.errors import InvalidRequest
from tests.conftest import TEST_KEY, WEBHOOK_SECRET, StoredPayments, signed_headers
from tests.support import stripe_objects
from tests.support.firestore import unique_project_id
from webhook import handler

MAX_BODY_BYTES = 1024 * 1024
NEW_SECRET = "whsec_" + "rolledsecretforthesuite98765"
CREATE_PATH = "/api/checkout/embedded-session"

# The same function, deployed two ways: as its own Cloud Function (Stripe
# posts to its root) and behind the one `api` service (at /webhook).
ENTRY_POINTS = {"api": "/webhook", "stripe_webhook": "/"}


# -- posting to the webhook -------------------------------------------------


class Webhook:
    """One entry point's test client, posting the way Stripe does."""

    def __init__(self, test_client, path: str):
        self.client = test_client
        self.path = path

    def deliver(self, event: dict, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
        return self.post(json.dumps(event), secret, timestamp)

    def post(self, payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
        return self.client.post(self.path, content=payload, headers=signed_headers(payload, secret, timestamp))

    def send(self, method: str = "POST", **kwargs):
        return self.client.request(method, self.path, **kwargs)


@pytest.fixture(params=list(ENTRY_POINTS))
def webhook(request, function_client):
    """The webhook behind each entry point it is deployed as."""
    return Webhook(function_client(request.param), ENTRY_POINTS[request.param])


# -- sessions at the Stripe stand-in ----------------------------------------


@pytest.fixture
def completed(standin, session_id):
    """The checkout.session.completed event of a card payment."""
    (event,) = standin.complete(session_id, payment_status="paid")
    return event


def assert_refused(response, status: int = 400):
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["error"], str) and response.json()["error"]


def assert_nothing_stored(payments: StoredPayments, session_id: str | None = None):
    assert payments.event_ids() == []
    if session_id is not None:
        assert payments.record(session_id) is None


def closed_port_address() -> str:
    """host:port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


# -- each event type updates the payment record -------------------------------


def test_completed_card_payment_is_recorded_paid(webhook, payments, standin, session_id, completed):
    response = webhook.deliver(completed)

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    record = payments.record(session_id)
    assert record["status"] == "complete"
    assert record["payment_status"] == "paid"
    assert record["paid_at"]
    assert record["amount_total"] == 200
    assert record["currency"] == "usd"
    assert record["customer_email"] == "buyer@example.com"
    assert record["metadata"] == {"board": "feelings"}
    assert record["payment_intent"] == standin.session(session_id)["payment_intent"]
    assert record["livemode"] is False
    assert record["last_event_id"] == completed["id"]
    assert record["last_event_created"] == completed["created"]
    assert payments.event_ids() == [completed["id"]]


def test_completed_delayed_payment_is_recorded_complete_but_unpaid(webhook, payments, standin, session_id):
    (completed,) = standin.complete(session_id, payment_status="unpaid")

    assert webhook.deliver(completed).status_code == 200

    record = payments.record(session_id)
    assert (record["status"], record["payment_status"]) == ("complete", "unpaid")
    assert record["paid_at"] is None


def test_async_payment_succeeded_marks_a_delayed_payment_paid(webhook, payments, standin, session_id):
    (completed,) = standin.complete(session_id, payment_status="unpaid")
    (succeeded,) = standin.async_payment(session_id, succeeded=True)

    assert webhook.deliver(completed).status_code == 200
    assert webhook.deliver(succeeded).status_code == 200

    record = payments.record(session_id)
    assert (record["status"], record["payment_status"]) == ("complete", "paid")
    assert record["paid_at"]
    assert sorted(payments.event_ids()) == sorted([completed["id"], succeeded["id"]])


def test_async_payment_failed_leaves_a_delayed_payment_unpaid(webhook, payments, standin, session_id):
    (completed,) = standin.complete(session_id, payment_status="unpaid")
    (failed,) = standin.async_payment(session_id, succeeded=False)

    assert webhook.deliver(completed).status_code == 200
    assert webhook.deliver(failed).status_code == 200

    record = payments.record(session_id)
    assert (record["status"], record["payment_status"]) == ("complete", "unpaid")
    assert record["paid_at"] is None
    assert sorted(payments.event_ids()) == sorted([completed["id"], failed["id"]])


def test_expired_session_is_recorded_expired(webhook, payments, standin, session_id):
    (expired,) = standin.expire(session_id)

    assert webhook.deliver(expired).status_code == 200

    record = payments.record(session_id)
    assert (record["status"], record["payment_status"]) == ("expired", "unpaid")
    assert record["paid_at"] is None
    assert record["last_event_id"] == expired["id"]


@pytest.mark.parametrize(
    "event_type, data_object",
    [
        (
            "payment_intent.succeeded",
            {
                "id": "pi_3QxYz0123456789",
                "object": "payment_intent",
                "amount": 200,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {},
            },
        ),
        (
            "charge.refunded",
            {
                "id": "ch_3QxYz0123456789",
                "object": "charge",
                "amount": 200,
                "amount_refunded": 200,
                "currency": "usd",
                "refunded": True,
            },
        ),
        ("customer.created", {"id": "cus_QxYz0123456789", "object": "customer", "email": "buyer@example.com"}),
    ],
)
def test_other_event_types_are_acknowledged_and_not_stored(webhook, payments, event_type, data_object):
    event = stripe_objects.event("checkout.session.completed", stripe_objects.checkout_session())
    event.update(type=event_type, data={"object": data_object})

    response = webhook.deliver(event)

    assert response.status_code == 200
    assert response.json()["received"] is True
    assert_nothing_stored(payments)


def test_session_event_without_a_checkout_session_is_refused(webhook, sqlite_payments):
    event = stripe_objects.event("checkout.session.completed", stripe_objects.checkout_session())
    event["data"]["object"] = {"id": "pi_3QxYz0123456789", "object": "payment_intent"}

    assert_refused(webhook.deliver(event))
    assert_nothing_stored(sqlite_payments)


# -- refusals: nothing is written ----------------------------------------------


def test_missing_signature_header_is_refused(webhook, sqlite_payments, session_id, completed):
    response = webhook.send(content=json.dumps(completed), headers={"Content-Type": "application/json"})

    assert_refused(response)
    assert "Stripe-Signature" in response.json()["error"]
    assert_nothing_stored(sqlite_payments, session_id)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", "t=notanumber,v1=abc", "v1=" + "0" * 64, "t=1700000000", "t=1700000000,v0=" + "0" * 64],
)
def test_malformed_signature_header_is_refused(webhook, sqlite_payments, session_id, completed, header):
    response = webhook.send(
        content=json.dumps(completed), headers={"Stripe-Signature": header, "Content-Type": "application/json"}
    )

    assert_refused(response)
    assert_nothing_stored(sqlite_payments, session_id)


def test_wrong_signature_is_refused(webhook, sqlite_payments, session_id, completed):
    headers = {"Stripe-Signature": f"t={int(time.time())},v1={'ab' * 32}", "Content-Type": "application/json"}

    assert_refused(webhook.send(content=json.dumps(completed), headers=headers))
    assert_nothing_stored(sqlite_payments, session_id)


def test_signature_from_another_secret_is_refused(webhook, sqlite_payments, session_id, completed):
    assert_refused(webhook.deliver(completed, secret="whsec_" + "someoneelsessecret000000000"))
    assert_nothing_stored(sqlite_payments, session_id)


def test_tampered_body_is_refused(webhook, sqlite_payments, session_id, completed):
    payload = json.dumps(completed)
    headers = signed_headers(payload)
    tampered = payload.replace('"amount_total": 200', '"amount_total": 1')
    assert tampered != payload

    assert_refused(webhook.send(content=tampered, headers=headers))
    assert_nothing_stored(sqlite_payments, session_id)


def test_signature_older_than_five_minutes_is_refused(webhook, sqlite_payments, session_id, completed):
    response = webhook.deliver(completed, timestamp=int(time.time()) - 310)

    assert_refused(response)
    assert "tolerance" in response.json()["error"]
    assert_nothing_stored(sqlite_payments, session_id)


def test_signature_just_under_five_minutes_old_is_accepted(webhook, sqlite_payments, session_id, completed):
    assert webhook.deliver(completed, timestamp=int(time.time()) - 290).status_code == 200
    assert sqlite_payments.event_ids() == [completed["id"]]


@pytest.mark.parametrize(
    "header",
    ["t=1,v1=\u00e9".encode("utf-8"), "t=1,v1=\u00e9".encode("latin-1"), b"t=1,v1=\x01"],
    ids=["UTF-8", "Latin-1", "control character"],
)
def test_a_signature_header_that_is_not_printable_ascii_is_refused(webhook, sqlite_payments, completed, header):
    response = webhook.send(
        content=json.dumps(completed), headers={"Stripe-Signature": header, "Content-Type": "application/json"}
    )

    assert_refused(response)
    assert "Stripe-Signature" in response.json()["error"]
    assert_nothing_stored(sqlite_payments)


@pytest.mark.parametrize("ahead", [310, 10 * 365 * 86400], ids=["five minutes and ten seconds", "ten years"])
def test_signature_dated_beyond_the_tolerance_in_the_future_is_refused(
    webhook, sqlite_payments, session_id, completed, ahead
):
    response = webhook.deliver(completed, timestamp=int(time.time()) + ahead)

    assert_refused(response)
    assert "future" in response.json()["error"]
    assert_nothing_stored(sqlite_payments, session_id)


def test_signature_a_little_ahead_of_our_clock_is_accepted(webhook, sqlite_payments, completed):
    assert webhook.deliver(completed, timestamp=int(time.time()) + 60).status_code == 200
    assert sqlite_payments.event_ids() == [completed["id"]]


@pytest.mark.parametrize("payload", ["[" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000], ids=["arrays", "objects"])
def test_signed_body_nested_too_deeply_is_refused(webhook, sqlite_payments, payload):
    response = webhook.post(payload)

    assert_refused(response)
    assert "nested too deeply" in response.json()["error"]
    assert_nothing_stored(sqlite_payments)


@pytest.mark.parametrize("where", ["metadata value", "metadata key", "email"])
def test_signed_event_with_a_lone_surrogate_is_refused(webhook, sqlite_payments, session_id, completed, where):
    session = completed["data"]["object"]
    if where == "metadata value":
        session["metadata"] = {"board": "\ud800"}
    elif where == "metadata key":
        session["metadata"] = {"\udfff": "feelings"}
    else:
        session["customer_details"] = {**(session.get("customer_details") or {}), "email": "a\ud800@example.com"}

    response = webhook.deliver(completed)  # json.dumps escapes the surrogate as \ud800, as any JSON writer may

    assert_refused(response)
    assert "Unicode" in response.json()["error"]
    assert_nothing_stored(sqlite_payments, session_id)


def test_signed_event_whose_session_id_ends_in_a_newline_is_refused(webhook, sqlite_payments, session_id, completed):
    completed["data"]["object"]["id"] = session_id + "\n"

    assert_refused(webhook.deliver(completed))
    assert_nothing_stored(sqlite_payments, session_id)


@pytest.mark.parametrize(
    "payload",
    [
        "not json at all",
        "[]",
        '"checkout.session.completed"',
        '{"object": "event"}',
        '{"id": "evt_1", "object": "event", "type": "checkout.session.completed", "created": "yesterday",'
        ' "data": {"object": {}}}',
        '{"id": "evt_1", "object": "event", "type": "checkout.session.completed", "created": 1700000000, "data": {}}',
        '{"id": "cs_test_a1B2c3", "object": "checkout.session", "status": "complete", "payment_status": "paid"}',
    ],
    ids=["text", "array", "string", "bare-object", "created-not-a-number", "no-data-object", "a-session-not-an-event"],
)
def test_signed_body_that_is_not_a_stripe_event_is_refused(webhook, sqlite_payments, payload):
    assert_refused(webhook.post(payload))
    assert_nothing_stored(sqlite_payments)


def test_body_that_is_not_utf8_is_refused(webhook, sqlite_payments):
    headers = {"Stripe-Signature": f"t={int(time.time())},v1={'ab' * 32}", "Content-Type": "application/json"}

    assert_refused(webhook.send(content=b'{"id": "\xff\xfe"}', headers=headers))
    assert_nothing_stored(sqlite_payments)


def test_body_of_exactly_one_mebibyte_is_accepted(webhook, sqlite_payments, completed):
    payload = json.dumps(completed)
    payload += " " * (MAX_BODY_BYTES - len(payload.encode()))

    assert webhook.post(payload).status_code == 200
    assert sqlite_payments.event_ids() == [completed["id"]]


def test_body_over_one_mebibyte_is_refused_even_when_signed(webhook, sqlite_payments, session_id, completed):
    payload = json.dumps(completed)
    payload += " " * (MAX_BODY_BYTES + 1 - len(payload.encode()))

    assert_refused(webhook.post(payload), 413)
    assert_nothing_stored(sqlite_payments, session_id)


def test_chunked_body_over_one_mebibyte_is_refused(webhook, sqlite_payments):
    response = webhook.send(
        # A body given as chunks is sent with Transfer-Encoding: chunked and no Content-Length.
        content=iter([b" " * (MAX_BODY_BYTES + 10)]),
        headers={"Stripe-Signature": f"t={int(time.time())},v1={'ab' * 32}"},
    )

    assert_refused(response, 413)
    assert_nothing_stored(sqlite_payments)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_other_than_post_are_refused_with_allow(webhook, sqlite_payments, method):
    response = webhook.send(method)

    assert_refused(response, 405)
    assert response.headers["Allow"] == "POST"
    assert_nothing_stored(sqlite_payments)


def test_head_is_refused_with_allow(webhook):
    response = webhook.send("HEAD")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_no_cors_headers_are_ever_sent(webhook, sqlite_payments, completed):
    origin = {"Origin": "http://localhost:5173"}
    payload = json.dumps(completed)
    responses = [
        webhook.send(content=payload, headers={**origin, **signed_headers(payload)}),
        webhook.send(content=payload, headers={**origin, "Stripe-Signature": "garbage"}),
        webhook.send("OPTIONS", headers={**origin, "Access-Control-Request-Method": "POST"}),
        webhook.send("GET", headers=origin),
    ]

    assert [r.status_code for r in responses] == [200, 400, 405, 405]
    for response in responses:
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


# -- rolling the signing secret -----------------------------------------------


@pytest.mark.parametrize("configured", [f"{WEBHOOK_SECRET},{NEW_SECRET}", f" {WEBHOOK_SECRET} , {NEW_SECRET} "])
def test_while_rolling_both_the_old_and_the_new_secret_are_accepted(webhook, sqlite_payments, monkeypatch, configured):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", configured)
    first = stripe_objects.event("checkout.session.expired", stripe_objects.checkout_session(status="expired"))
    second = stripe_objects.event("checkout.session.expired", stripe_objects.checkout_session(status="expired"))

    assert webhook.deliver(first, secret=WEBHOOK_SECRET).status_code == 200
    assert webhook.deliver(second, secret=NEW_SECRET).status_code == 200
    assert sorted(sqlite_payments.event_ids()) == sorted([first["id"], second["id"]])


def test_a_header_signed_with_old_and_new_secrets_is_accepted_by_either(webhook, sqlite_payments, monkeypatch):
    """While a secret rolls, Stripe puts one v1 signature per secret in the header."""
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", NEW_SECRET)
    event = stripe_objects.event("checkout.session.expired", stripe_objects.checkout_session(status="expired"))
    payload = json.dumps(event)
    now = int(time.time())
    old_signature = signed_headers(payload, WEBHOOK_SECRET, now)["Stripe-Signature"]
    new_signature = signed_headers(payload, NEW_SECRET, now)["Stripe-Signature"]
    header = old_signature + "," + new_signature.split(",", 1)[1]

    response = webhook.send(content=payload, headers={"Stripe-Signature": header, "Content-Type": "application/json"})

    assert response.status_code == 200
    assert sqlite_payments.event_ids() == [event["id"]]


def test_a_new_secret_is_refused_until_it_is_configured(webhook, sqlite_payments, session_id, completed):
    assert_refused(webhook.deliver(completed, secret=NEW_SECRET))
    assert_nothing_stored(sqlite_payments, session_id)


# -- at-least-once delivery: duplicates and any order -------------------------


def test_repeated_event_is_acknowledged_and_changes_nothing(webhook, payments, session_id, completed):
    assert webhook.deliver(completed).json() == {"received": True, "duplicate": False}
    before = payments.record(session_id)

    again = webhook.deliver(completed)

    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    assert payments.record(session_id) == before
    assert payments.event_ids() == [completed["id"]]


def test_an_old_event_redelivered_after_a_newer_one_changes_nothing(webhook, payments, standin, session_id):
    (completed,) = standin.complete(session_id, payment_status="unpaid")
    (succeeded,) = standin.async_payment(session_id, succeeded=True)
    webhook.deliver(completed)
    webhook.deliver(succeeded)
    before = payments.record(session_id)

    assert webhook.deliver(completed).json()["duplicate"] is True
    assert payments.record(session_id) == before


def _session_lifecycle() -> dict[str, dict]:
    """One session's events, each a second apart in this order.

    Stripe would not send all four for one session, but each may arrive
    late, early or twice, so whatever order they arrive in must give one
    answer: complete (status never goes back), paid (payment_status never
    goes back, and beats a failure), described by the newest event.
    """
    session = stripe_objects.checkout_session(customer_email="buyer@example.com")
    t = session["created"]
    built = {}
    for offset, (name, event_type, overrides) in enumerate(
        [
            ("expired", "checkout.session.expired", {}),
            ("completed-unpaid", "checkout.session.completed", {"payment_status": "unpaid"}),
            ("async-failed", "checkout.session.async_payment_failed", {}),
            ("async-succeeded", "checkout.session.async_payment_succeeded", {}),
        ],
        start=1,
    ):
        after = stripe_objects.session_after(event_type, session, **overrides)
        built[name] = stripe_objects.event(event_type, after, created=t + offset)
    return built


def _money_lifecycle() -> dict[str, dict]:
    """A delayed payment that succeeds, is fully refunded and disputed: refunds and disputes
    name the PaymentIntent, and in some orders arrive before any event of the session."""
    session = stripe_objects.checkout_session(customer_email="buyer@example.com")
    t = session["created"]
    completed = stripe_objects.session_after("checkout.session.completed", session, payment_status="unpaid")
    intent = completed["payment_intent"]
    return {
        "completed-unpaid": stripe_objects.event("checkout.session.completed", completed, created=t + 1),
        "async-succeeded": stripe_objects.event(
            "checkout.session.async_payment_succeeded",
            stripe_objects.session_after("checkout.session.async_payment_succeeded", session),
            created=t + 2,
        ),
        "refunded": stripe_objects.event(
            "charge.refunded", stripe_objects.charge(intent, amount=1900, amount_refunded=1900), created=t + 3
        ),
        "disputed": stripe_objects.event(
            "charge.dispute.created", stripe_objects.dispute(intent, status="needs_response"), created=t + 4
        ),
    }


SESSION_LIFECYCLE = _session_lifecycle()
MONEY_LIFECYCLE = _money_lifecycle()


def _the_session(lifecycle: dict) -> dict:
    return next(e for e in reversed(list(lifecycle.values())) if e["type"].startswith("checkout.session"))


@pytest.mark.parametrize("order", list(itertools.permutations(SESSION_LIFECYCLE)), ids="+".join)
def test_every_delivery_order_gives_the_same_record(webhook, payments, order):
    for name in order:
        assert webhook.deliver(SESSION_LIFECYCLE[name]).status_code == 200

    newest = SESSION_LIFECYCLE["async-succeeded"]
    newest_session = newest["data"]["object"]
    record = payments.record(newest_session["id"])
    assert record["paid_at"] and record["updated_at"]
    assert {k: v for k, v in record.items() if k not in ("paid_at", "updated_at")} == {
        "session_id": newest_session["id"],
        "status": "complete",
        "payment_status": "paid",
        "outcome": "paid",
        "async_payment_failed": True,
        "created": newest_session["created"],
        "amount_total": 1900,
        "currency": "eur",
        "customer_email": "buyer@example.com",
        "metadata": newest_session["metadata"],
        "payment_intent": newest_session["payment_intent"],
        "livemode": False,
        "amount_refunded": 0,
        "refunded": False,
        "dispute": None,
        "last_dispute_event_id": None,
        "last_dispute_event_created": None,
        "last_event_id": newest["id"],
        "last_event_created": newest["created"],
    }
    assert sorted(payments.event_ids()) == sorted(e["id"] for e in SESSION_LIFECYCLE.values())


@pytest.mark.parametrize("order", list(itertools.permutations(MONEY_LIFECYCLE)), ids="+".join)
def test_every_delivery_order_of_refunds_and_disputes_gives_the_same_record(webhook, payments, order):
    for name in order:
        assert webhook.deliver(MONEY_LIFECYCLE[name]).status_code == 200

    session = _the_session(MONEY_LIFECYCLE)["data"]["object"]
    disputed = MONEY_LIFECYCLE["disputed"]
    record = payments.record(session["id"])
    assert (record["status"], record["payment_status"], record["outcome"]) == ("complete", "paid", "refunded")
    assert (record["amount_refunded"], record["refunded"]) == (1900, True)
    assert record["dispute"] == {
        "id": disputed["data"]["object"]["id"],
        "status": "needs_response",
        "reason": "fraudulent",
        "amount": 1900,
    }
    assert (record["last_dispute_event_id"], record["last_event_id"]) == (
        disputed["id"],
        MONEY_LIFECYCLE["async-succeeded"]["id"],
    )
    assert sorted(payments.event_ids()) == sorted(e["id"] for e in MONEY_LIFECYCLE.values())


# -- nothing is lost when the store is down -------------------------------------


def test_firestore_unreachable_is_a_quick_5xx_and_the_retry_is_recorded_once(
    new_client, standin, session_id, completed, firestore_emulator, monkeypatch, log_lines
):
    monkeypatch.setenv("PAYMENTS_STORE", "firestore")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", unique_project_id())
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", closed_port_address())
    client = new_client()
    payload = json.dumps(completed)
    headers = signed_headers(payload)

    started = time.monotonic()
    response = client.post("/webhook", content=payload, headers=headers)
    elapsed = time.monotonic() - started

    assert 500 <= response.status_code < 600
    assert response.json()["error"]
    assert elapsed < 12
    errors = [line for line in log_lines() if line.get("severity") == "ERROR"]
    assert [line["status"] for line in errors if line.get("endpoint") == "stripe_webhook"] == [response.status_code]

    # Firestore is back; Stripe retries the same delivery, reaching a new instance.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator)
    client = new_client()
    payments = StoredPayments("firestore", client)
    assert_nothing_stored(payments, session_id)

    retried = client.post("/webhook", content=payload, headers=headers)

    assert retried.status_code == 200
    assert retried.json() == {"received": True, "duplicate": False}
    assert payments.record(session_id)["payment_status"] == "paid"
    assert payments.event_ids() == [completed["id"]]
    assert client.post("/webhook", content=payload, headers=headers).json()["duplicate"] is True


# -- logs and secrets ------------------------------------------------------------


def test_each_request_writes_one_json_request_line(webhook, sqlite_payments, completed, log_lines):
    log_lines()  # forget what setting up the session wrote
    payload = json.dumps(completed)
    statuses = [
        webhook.post(payload).status_code,
        webhook.send(content=payload, headers={"Stripe-Signature": "garbage"}).status_code,
        webhook.send("GET").status_code,
    ]

    lines = log_lines()
    assert not [line for line in lines if "raw" in line], "every log line is a JSON object"
    request_lines = [line for line in lines if "endpoint" in line and "status" in line]
    assert [line["status"] for line in request_lines] == statuses == [200, 400, 405]
    assert [line["severity"] for line in request_lines] == ["INFO", "WARNING", "WARNING"]
    assert {line["endpoint"] for line in request_lines} == {"stripe_webhook"}


def test_the_request_line_tells_a_refused_signature_from_a_missing_one(webhook, sqlite_payments, completed, log_lines):
    log_lines()
    payload = json.dumps(completed)
    webhook.post(payload)
    webhook.post(payload)
    webhook.post(payload, secret=NEW_SECRET)
    webhook.send(content=payload)

    lines = [line for line in log_lines() if line.get("endpoint") == "stripe_webhook"]
    assert [(line["status"], line["signature"], line.get("outcome")) for line in lines] == [
        (200, "verified", "recorded"),
        (200, "verified", "duplicate"),
        (400, "unverified", None),
        (400, "missing", None),
    ]


def test_secrets_never_appear_in_responses_or_logs(
    webhook, sqlite_payments, standin, session_id, monkeypatch, log_lines, new_client
):
    (completed,) = standin.complete(session_id)
    client_secret = standin.session(session_id)["client_secret"]
    payload = json.dumps(completed)
    responses = [
        webhook.post(payload),
        webhook.post(payload),
        webhook.post(payload, secret=NEW_SECRET),
        webhook.post(payload, timestamp=int(time.time()) - 3600),
        webhook.send(content=payload, headers={"Stripe-Signature": "garbage"}),
        webhook.send("GET"),
    ]
    # A misconfigured secret is reported by name, never by value.
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "not-a-signing-secret-" + WEBHOOK_SECRET)
    misconfigured = Webhook(new_client(), "/webhook").post(payload)
    assert misconfigured.status_code == 500
    assert "STRIPE_WEBHOOK_SECRET" in misconfigured.json()["error"]
    responses.append(misconfigured)

    seen = [r.text + json.dumps(dict(r.headers)) for r in responses]
    seen += [json.dumps(line) for line in log_lines()]
    for secret in (WEBHOOK_SECRET, NEW_SECRET, TEST_KEY, client_secret):
        assert not [text for text in seen if secret in text]


def test_no_body_content_reaches_a_log_or_an_answer(webhook, sqlite_payments, completed, log_lines):
    completed["data"]["object"]["metadata"] = {"child": "Sam Smith, DOB 2019-01-02"}
    completed["data"]["object"]["customer_details"] = {"email": "sam.smith.parent@example.com"}
    payload = json.dumps(completed)
    log_lines()

    responses = [
        webhook.post(payload),
        webhook.send(content=payload, headers={"Stripe-Signature": "garbage"}),
        webhook.post(payload.replace('"object": "event"', '"object": "Sam Smith"')),
        webhook.post("Sam Smith, DOB 2019-01-02"),
    ]

    assert [r.status_code for r in responses] == [200, 400, 400, 400]
    seen = json.dumps(log_lines()) + "".join(r.text for r in responses)
    for fragment in ("Sam", "Smith", "2019-01-02", "sam.smith.parent"):
        assert fragment not in seen


# -- what each refusal says ------------------------------------------------------


def test_a_missing_signature_says_so(webhook, sqlite_payments, completed):
    response = webhook.send(content=json.dumps(completed), headers={"Content-Type": "application/json"})

    assert response.json() == {"error": "Missing Stripe-Signature header."}


def test_a_signature_header_that_is_not_printable_ascii_says_it_is_malformed(webhook, sqlite_payments, completed):
    response = webhook.send(content=json.dumps(completed), headers={"Stripe-Signature": "t=1,v1=\t"})

    assert response.json() == {"error": "Stripe-Signature header is malformed."}


def test_a_body_that_is_not_utf8_says_so(webhook, sqlite_payments):
    payload = b"\xff\xfe{}"
    header = signed_headers(payload.decode("latin-1"))["Stripe-Signature"]

    response = webhook.send(content=payload, headers={"Stripe-Signature": header})

    assert response.json() == {"error": "Webhook body is not UTF-8 text."}


def test_a_signed_body_that_is_not_json_says_the_webhook_body_is_not_json(webhook, sqlite_payments):
    response = webhook.post("not json")

    assert response.json() == {"error": "Webhook body is not JSON."}


def test_a_signed_body_that_is_not_an_event_says_so(webhook, sqlite_payments):
    response = webhook.post(json.dumps({"object": "customer"}))

    assert response.json() == {"error": "Webhook body is not a Stripe event."}


def test_a_signature_from_the_future_says_so(webhook, sqlite_payments, completed):
    response = webhook.deliver(completed, timestamp=int(time.time()) + 400)

    assert response.json() == {
        "error": "Stripe-Signature verification failed: Timestamp is in the future, beyond the tolerance."
    }


def test_a_signature_dated_exactly_the_tolerance_ahead_is_accepted_and_a_second_more_is_not(monkeypatch):
    now = int(time.time())  # Stripe's library checks the past against the real clock; ours is held still
    monkeypatch.setattr(handler, "time", type("Clock", (), {"time": staticmethod(lambda: now)}))
    payload = json.dumps(stripe_objects.event("customer.created", {"object": "customer"}))

    def verify_at(signed: int) -> None:
        handler.verify(
            payload.encode(), signed_headers(payload, timestamp=signed)["Stripe-Signature"], (WEBHOOK_SECRET,)
        )

    verify_at(now + handler.TOLERANCE_SECONDS)
    with pytest.raises(InvalidRequest, match="in the future"):
        verify_at(now + handler.TOLERANCE_SECONDS + 1)


def test_without_any_secret_to_check_with_nothing_is_verified():
    payload = '{"object": "event"}'

    with pytest.raises(InvalidRequest) as refused:
        handler.verify(payload.encode(), signed_headers(payload)["Stripe-Signature"], ())

    assert str(refused.value) == "Stripe-Signature verification failed: no secret to check it with"


def test_the_signature_time_is_read_as_stripes_library_reads_it():
    assert handler.signed_at("v1=ab,t=1800000000=x=y,t=5") == 1800000000


# -- the request line --------------------------------------------------------------


def webhook_line(log_lines) -> dict:
    [line] = [line for line in log_lines() if line.get("endpoint") == "stripe_webhook"]
    return line


def test_the_request_line_of_a_session_event_names_the_event_session_and_payment_status(
    webhook, sqlite_payments, session_id, completed, log_lines
):
    log_lines()

    webhook.deliver(completed)

    line = webhook_line(log_lines)
    assert {k: line.get(k) for k in ("event_type", "event_id", "session_id", "payment_status", "outcome")} == {
        "event_type": "checkout.session.completed",
        "event_id": completed["id"],
        "session_id": session_id,
        "payment_status": "paid",
        "outcome": "recorded",
    }


def test_the_request_line_of_a_refund_names_its_payment_intent(
    webhook, sqlite_payments, standin, session_id, log_lines
):
    standin.complete(session_id)
    [refunded] = [event for event in standin.refund_payment(session_id) if event["type"] == "charge.refunded"]
    log_lines()

    webhook.deliver(refunded)

    line = webhook_line(log_lines)
    assert (line["event_type"], line["event_id"], line["outcome"]) == ("charge.refunded", refunded["id"], "recorded")
    assert line["payment_intent"] == standin.session(session_id)["payment_intent"]
    assert "session_id" not in line


def test_the_request_line_of_an_event_not_handled_says_it_was_ignored(webhook, sqlite_payments, log_lines):
    event = stripe_objects.event("customer.created", {"id": "cus_1", "object": "customer"})
    log_lines()

    assert webhook.deliver(event).json() == {"received": True}

    line = webhook_line(log_lines)
    assert (line["event_type"], line["outcome"], line["signature"]) == ("customer.created", "ignored", "verified")
