"""The local Stripe stand-in, driven by the real stripe SDK over HTTP.

Other tests trust the stand-in to fail where Stripe fails, so these tests pin
down that it rejects what Stripe rejects (unknown parameters, ui_mode values
from the wrong API version, reused idempotency keys) and that its faults
reach application code the way the SDK reports real ones.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import stripe

from devtools.stripe_standin import DEFAULT_API_VERSION, StripeStandin, decode_form

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk_test_" + "standinSuite0123456789"
LIVE_KEY = "sk_live_" + "standinSuite0123456789"
OLD_VERSION = "2025-09-30.clover"
RETURN_URL = "http://localhost:5173/return?session_id={CHECKOUT_SESSION_ID}"


@pytest.fixture(scope="module")
def running_standin():
    with StripeStandin() as server:
        yield server


@pytest.fixture
def fake_stripe(running_standin):
    """The stand-in with no sessions, events, faults or latency left over."""
    running_standin.reset()
    return running_standin


def make_client(server, key=TEST_KEY, retries=0, version=None):
    return stripe.StripeClient(
        key,
        base_addresses={"api": server.base_url},
        max_network_retries=retries,
        stripe_version=version,
        http_client=stripe.RequestsClient(timeout=5),
    )


def line_item(name, unit_amount, quantity=1, currency="usd", **product_extra):
    return {
        "quantity": quantity,
        "price_data": {
            "currency": currency,
            "unit_amount": unit_amount,
            "product_data": {"name": name, **product_extra},
        },
    }


def session_params(**overrides):
    params = {
        "mode": "payment",
        "ui_mode": "embedded_page",
        "return_url": RETURN_URL,
        "line_items": [line_item("T-shirt", 1500, quantity=2)],
        "metadata": {"order_id": "order_123"},
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def create(server, **overrides):
    return make_client(server).v1.checkout.sessions.create(params=session_params(**overrides))


def rejected(server, client=None, **overrides):
    """Create a session that must fail, and return the SDK's error."""
    client = client or make_client(server)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=session_params(**overrides))
    assert caught.value.http_status == 400
    return caught.value


# -- create / retrieve / expire ---------------------------------------------


def test_create_returns_open_unpaid_embedded_session(fake_stripe):
    session = create(fake_stripe)

    assert session.object == "checkout.session"
    assert session.id.startswith("cs_test_") and len(session.id) == len("cs_test_") + 58
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.client_secret.startswith(session.id + "_secret_")
    assert session.url is None
    assert session.payment_intent is None
    assert session.customer_details is None
    assert session.metadata.to_dict() == {"order_id": "order_123"}
    assert session.expires_at == session.created + 24 * 60 * 60


def test_create_sums_line_items_into_amount_total(fake_stripe):
    items = [line_item("A", 1500, quantity=2, currency="eur"), line_item("B", 250, currency="eur")]
    session = create(fake_stripe, line_items=items)

    assert session.amount_subtotal == 3250
    assert session.amount_total == 3250
    assert session.currency == "eur"


def test_return_url_placeholder_is_kept_literally(fake_stripe):
    assert create(fake_stripe).return_url == RETURN_URL


def test_retrieve_returns_the_created_session(fake_stripe):
    created = create(fake_stripe, customer_email="buyer@example.com", client_reference_id="user_1")

    session = make_client(fake_stripe).v1.checkout.sessions.retrieve(created.id)

    assert session.id == created.id
    assert session.client_secret == created.client_secret
    assert session.customer_email == "buyer@example.com"
    assert session.client_reference_id == "user_1"


def test_retrieve_can_expand_line_items(fake_stripe):
    created = create(fake_stripe)

    session = make_client(fake_stripe).v1.checkout.sessions.retrieve(created.id, params={"expand": ["line_items"]})

    [item] = session.line_items.data
    assert (item.description, item.quantity, item.amount_total) == ("T-shirt", 2, 3000)


def test_expire_marks_open_session_expired_and_emits_event(fake_stripe):
    created = create(fake_stripe)

    session = make_client(fake_stripe).v1.checkout.sessions.expire(created.id)

    assert session.status == "expired"
    [event] = fake_stripe.events
    assert event["type"] == "checkout.session.expired"
    assert event["data"]["object"]["status"] == "expired"


def test_expire_rejects_session_that_is_not_open(fake_stripe):
    created = create(fake_stripe)
    fake_stripe.complete(created.id)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_client(fake_stripe).v1.checkout.sessions.expire(created.id)

    assert caught.value.http_status == 400
    assert "complete" in caught.value.user_message


# -- parameter validation ---------------------------------------------------


def test_unknown_top_level_parameter_is_rejected(fake_stripe):
    error = rejected(fake_stripe, automatic_receipts=True)

    assert error.code == "parameter_unknown"
    assert error.param == "automatic_receipts"
    assert error.user_message == "Received unknown parameter: automatic_receipts"


def test_unknown_nested_parameter_is_rejected_with_bracket_path(fake_stripe):
    items = [line_item("A", 100, colour="red")]

    error = rejected(fake_stripe, line_items=items)

    assert error.code == "parameter_unknown"
    assert error.param == "line_items[0][price_data][product_data][colour]"


def test_unknown_parameter_is_not_recorded_as_a_session(fake_stripe):
    rejected(fake_stripe, automatic_receipts=True)

    assert fake_stripe.sessions == []


def test_metadata_accepts_arbitrary_keys(fake_stripe):
    metadata = {"order_id": "o1", "anything-goes_here": "yes", "7": "seven"}

    assert create(fake_stripe, metadata=metadata).metadata.to_dict() == metadata


def test_metadata_key_over_40_characters_is_rejected(fake_stripe):
    error = rejected(fake_stripe, metadata={"k" * 41: "v"})

    assert error.param == "metadata[" + "k" * 41 + "]"


def test_metadata_over_50_keys_is_rejected(fake_stripe):
    error = rejected(fake_stripe, metadata={f"key{i}": "v" for i in range(51)})

    assert error.param == "metadata"


def test_metadata_value_over_500_characters_is_rejected(fake_stripe):
    error = rejected(fake_stripe, metadata={"note": "x" * 501})

    assert error.param == "metadata[note]"


def test_non_integer_unit_amount_is_rejected(fake_stripe):
    items = [line_item("A", 12.5)]

    error = rejected(fake_stripe, line_items=items)

    assert error.code == "parameter_invalid_integer"
    assert error.param == "line_items[0][price_data][unit_amount]"


def test_missing_mode_is_rejected(fake_stripe):
    error = rejected(fake_stripe, mode=None)

    assert (error.code, error.param) == ("parameter_missing", "mode")


def test_payment_mode_requires_line_items(fake_stripe):
    error = rejected(fake_stripe, line_items=None)

    assert (error.code, error.param) == ("parameter_missing", "line_items")


def test_price_data_requires_currency(fake_stripe):
    items = [line_item("A", 100)]
    del items[0]["price_data"]["currency"]

    error = rejected(fake_stripe, line_items=items)

    assert (error.code, error.param) == ("parameter_missing", "line_items[0][price_data][currency]")


def test_invalid_customer_email_is_rejected(fake_stripe):
    error = rejected(fake_stripe, customer_email="not-an-email")

    assert (error.code, error.param) == ("email_invalid", "customer_email")


# -- ui_mode depends on the API version -------------------------------------


def test_embedded_page_is_accepted_on_pinned_version(fake_stripe):
    session = create(fake_stripe, ui_mode="embedded_page")

    assert session.ui_mode == "embedded_page"
    assert fake_stripe.requests[-1].headers["Stripe-Version"] == DEFAULT_API_VERSION


def test_embedded_is_rejected_on_pinned_version(fake_stripe):
    error = rejected(fake_stripe, ui_mode="embedded")

    assert error.param == "ui_mode"
    assert DEFAULT_API_VERSION in error.user_message


def test_embedded_is_accepted_on_clover(fake_stripe):
    client = make_client(fake_stripe, version=OLD_VERSION)

    session = client.v1.checkout.sessions.create(params=session_params(ui_mode="embedded"))

    assert session.ui_mode == "embedded"
    assert session.client_secret


def test_embedded_page_is_rejected_on_clover(fake_stripe):
    old_client = make_client(fake_stripe, version=OLD_VERSION)

    error = rejected(fake_stripe, client=old_client, ui_mode="embedded_page")

    assert error.param == "ui_mode"
    assert OLD_VERSION in error.user_message


def test_session_from_clover_reads_with_new_ui_mode_name_on_pinned_version(fake_stripe):
    old_client = make_client(fake_stripe, version=OLD_VERSION)
    created = old_client.v1.checkout.sessions.create(params=session_params(ui_mode="embedded"))

    session = make_client(fake_stripe).v1.checkout.sessions.retrieve(created.id)

    assert session.ui_mode == "embedded_page"


def test_embedded_session_requires_return_url(fake_stripe):
    error = rejected(fake_stripe, return_url=None)

    assert error.param == "return_url"


def test_embedded_session_without_redirect_needs_no_return_url(fake_stripe):
    session = create(fake_stripe, return_url=None, redirect_on_completion="never")

    assert session.return_url is None


def test_embedded_session_rejects_success_url(fake_stripe):
    error = rejected(fake_stripe, success_url="http://localhost:5173/thanks")

    assert error.param == "success_url"


def test_hosted_session_has_url_and_no_client_secret(fake_stripe):
    session = create(
        fake_stripe,
        ui_mode="hosted_page",
        return_url=None,
        success_url="http://localhost:5173/thanks",
        cancel_url="http://localhost:5173/cart",
    )

    assert session.url.startswith("https://")
    assert session.client_secret is None


# -- idempotency ------------------------------------------------------------


def test_idempotent_replay_returns_same_session_without_creating_another(fake_stripe):
    client = make_client(fake_stripe)
    options = {"idempotency_key": "order_123-attempt"}

    first = client.v1.checkout.sessions.create(params=session_params(), options=options)
    second = client.v1.checkout.sessions.create(params=session_params(), options=options)

    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert second.last_response.body == first.last_response.body
    assert len(fake_stripe.sessions) == 1


def test_idempotency_key_reused_with_different_params_raises_idempotency_error(fake_stripe):
    client = make_client(fake_stripe)
    options = {"idempotency_key": "order_123-attempt"}
    client.v1.checkout.sessions.create(params=session_params(), options=options)

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params=session_params(metadata={"order_id": "order_999"}), options=options)


def test_idempotency_keys_are_scoped_to_the_api_key(fake_stripe):
    options = {"idempotency_key": "shared-key"}
    first = make_client(fake_stripe).v1.checkout.sessions.create(params=session_params(), options=options)

    other = make_client(fake_stripe, key="sk_test_anotherAccount").v1.checkout.sessions.create(
        params=session_params(), options=options
    )

    assert other.id != first.id


# -- faults and latency -----------------------------------------------------


def test_injected_500_is_retried_by_sdk_with_the_same_idempotency_key(fake_stripe):
    fake_stripe.fail_next(1, status=500)

    session = make_client(fake_stripe, retries=1).v1.checkout.sessions.create(params=session_params())

    assert session.status == "open"
    first, retry = fake_stripe.requests
    assert first.headers["Idempotency-Key"] == retry.headers["Idempotency-Key"]


def test_injected_500_surfaces_as_api_error_when_retries_are_exhausted(fake_stripe):
    fake_stripe.fail_next(2, status=500)

    with pytest.raises(stripe.APIError) as caught:
        make_client(fake_stripe, retries=1).v1.checkout.sessions.create(params=session_params())

    assert caught.value.http_status == 500
    assert fake_stripe.request_count == 2
    assert fake_stripe.sessions == []


def test_injected_429_surfaces_as_rate_limit_error_without_retry(fake_stripe):
    fake_stripe.fail_next(1, status=429)

    with pytest.raises(stripe.RateLimitError) as caught:
        make_client(fake_stripe, retries=2).v1.checkout.sessions.create(params=session_params())

    assert caught.value.headers["Retry-After"] == "1"
    assert fake_stripe.request_count == 1


def test_injected_401_surfaces_as_authentication_error_without_the_key(fake_stripe):
    fake_stripe.fail_next(1, status=401)

    with pytest.raises(stripe.AuthenticationError) as caught:
        create(fake_stripe)

    assert caught.value.http_status == 401
    assert TEST_KEY not in caught.value.user_message


def test_latency_is_applied_to_api_responses(fake_stripe):
    created = create(fake_stripe)
    fake_stripe.latency = 0.2

    started = time.monotonic()
    make_client(fake_stripe).v1.checkout.sessions.retrieve(created.id)

    assert time.monotonic() - started >= 0.2


# -- lookup, auth and modes -------------------------------------------------


def test_unknown_session_is_404_resource_missing(fake_stripe):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_client(fake_stripe).v1.checkout.sessions.retrieve("cs_test_" + "a" * 58)

    assert caught.value.http_status == 404
    assert (caught.value.code, caught.value.param) == ("resource_missing", "session")


def test_live_key_creates_live_session(fake_stripe):
    session = make_client(fake_stripe, key=LIVE_KEY).v1.checkout.sessions.create(params=session_params())

    assert session.livemode is True
    assert session.id.startswith("cs_live_")


def test_test_session_is_invisible_to_live_key(fake_stripe):
    created = create(fake_stripe)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_client(fake_stripe, key=LIVE_KEY).v1.checkout.sessions.retrieve(created.id)

    assert caught.value.http_status == 404


def test_malformed_api_key_is_an_authentication_error(fake_stripe):
    client = make_client(fake_stripe, key="pk_test_publishable")

    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.checkout.sessions.create(params=session_params())

    assert caught.value.http_status == 401


def test_missing_api_key_is_401_in_stripe_error_shape(fake_stripe):
    url = f"{fake_stripe.base_url}/v1/checkout/sessions"

    response = requests.post(url, data={"mode": "payment"}, timeout=5)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["Request-Id"].startswith("req_")


def test_unrecognized_url_is_stripe_style_404(fake_stripe):
    response = requests.get(
        f"{fake_stripe.base_url}/v1/customers",
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        timeout=5,
    )

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Request-Id" in response.headers


def test_request_log_keeps_version_and_idempotency_key_but_not_authorization(fake_stripe):
    make_client(fake_stripe).v1.checkout.sessions.create(
        params=session_params(), options={"idempotency_key": "logged-key"}
    )

    [logged] = fake_stripe.requests
    assert (logged.method, logged.path) == ("POST", "/v1/checkout/sessions")
    assert logged.params["line_items"][0]["price_data"]["currency"] == "usd"
    assert logged.headers["Idempotency-Key"] == "logged-key"
    assert "Authorization" not in logged.headers
    assert TEST_KEY not in repr(logged)


# -- simulated payments and events ------------------------------------------


def test_complete_emits_completed_event_with_session_snapshot(fake_stripe):
    created = create(fake_stripe)

    [event] = fake_stripe.complete(created.id)

    assert event["id"].startswith("evt_")
    assert event["object"] == "event"
    assert event["type"] == "checkout.session.completed"
    assert event["api_version"] == DEFAULT_API_VERSION
    assert event["livemode"] is False
    assert event["pending_webhooks"] == 1
    assert event["request"] == {"id": None, "idempotency_key": None}
    assert isinstance(event["created"], int)
    snapshot = event["data"]["object"]
    assert snapshot["id"] == created.id
    assert (snapshot["status"], snapshot["payment_status"]) == ("complete", "paid")
    assert snapshot["payment_intent"].startswith("pi_")
    assert snapshot["customer_details"]["email"] == "jenny@example.com"
    assert snapshot["metadata"] == {"order_id": "order_123"}


def test_completed_session_is_seen_by_the_sdk(fake_stripe):
    created = create(fake_stripe)
    fake_stripe.complete(created.id, customer_email="sam@example.com", name="Sam")

    session = make_client(fake_stripe).v1.checkout.sessions.retrieve(created.id)

    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.customer_details.name == "Sam"


def test_event_snapshot_does_not_change_with_later_state(fake_stripe):
    created = create(fake_stripe)
    [completed] = fake_stripe.complete(created.id, payment_status="unpaid")
    fake_stripe.async_payment(created.id, succeeded=True)

    assert fake_stripe.event(completed["id"])["data"]["object"]["payment_status"] == "unpaid"


def test_async_payment_success_marks_session_paid(fake_stripe):
    created = create(fake_stripe)
    fake_stripe.complete(created.id, payment_status="unpaid")

    [event] = fake_stripe.async_payment(created.id, succeeded=True)

    assert event["type"] == "checkout.session.async_payment_succeeded"
    assert event["data"]["object"]["payment_status"] == "paid"


def test_async_payment_failure_leaves_session_unpaid(fake_stripe):
    created = create(fake_stripe)
    fake_stripe.complete(created.id, payment_status="unpaid")

    [event] = fake_stripe.async_payment(created.id, succeeded=False)

    assert event["type"] == "checkout.session.async_payment_failed"
    assert event["data"]["object"]["payment_status"] == "unpaid"


def test_async_payment_requires_a_complete_unpaid_session(fake_stripe):
    created = create(fake_stripe)

    with pytest.raises(ValueError):
        fake_stripe.async_payment(created.id, succeeded=True)


def test_expire_emits_expired_event(fake_stripe):
    created = create(fake_stripe)

    [event] = fake_stripe.expire(created.id)

    assert event["type"] == "checkout.session.expired"
    assert event["data"]["object"]["status"] == "expired"


def test_events_carry_the_api_version_the_session_was_created_with(fake_stripe):
    client = make_client(fake_stripe, version=OLD_VERSION)
    created = client.v1.checkout.sessions.create(params=session_params(ui_mode="embedded"))

    [event] = fake_stripe.complete(created.id)

    assert event["api_version"] == OLD_VERSION
    assert event["data"]["object"]["ui_mode"] == "embedded"


def test_events_are_kept_for_lookup_and_replay(fake_stripe):
    created = create(fake_stripe)
    [completed] = fake_stripe.complete(created.id)

    assert fake_stripe.event(completed["id"]) == completed
    assert [event["id"] for event in fake_stripe.events] == [completed["id"]]


# -- admin endpoints over HTTP ----------------------------------------------


def test_admin_complete_returns_session_and_events(fake_stripe):
    created = create(fake_stripe)

    response = requests.post(
        f"{fake_stripe.base_url}/_standin/sessions/{created.id}/complete",
        data={"payment_status": "unpaid"},
        timeout=5,
    )

    body = response.json()
    assert response.status_code == 200
    assert body["session"]["payment_status"] == "unpaid"
    assert [event["type"] for event in body["events"]] == ["checkout.session.completed"]


def test_admin_async_payment_and_event_lookup(fake_stripe):
    created = create(fake_stripe)
    fake_stripe.complete(created.id, payment_status="unpaid")
    base = fake_stripe.base_url

    result = requests.post(
        f"{base}/_standin/sessions/{created.id}/async_payment", json={"succeeded": True}, timeout=5
    ).json()
    [event] = result["events"]
    listed = requests.get(f"{base}/_standin/events", timeout=5).json()
    fetched = requests.get(f"{base}/_standin/events/{event['id']}", timeout=5).json()

    assert event["type"] == "checkout.session.async_payment_succeeded"
    assert [e["type"] for e in listed["data"]] == [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ]
    assert fetched == event


def test_admin_expire_and_unknown_session(fake_stripe):
    created = create(fake_stripe)
    base = fake_stripe.base_url

    expired = requests.post(f"{base}/_standin/sessions/{created.id}/expire", timeout=5)
    missing = requests.post(f"{base}/_standin/sessions/cs_test_nope/expire", timeout=5)

    assert expired.json()["session"]["status"] == "expired"
    assert missing.status_code == 404


def test_admin_faults_are_served_to_the_next_api_requests(fake_stripe):
    response = requests.post(f"{fake_stripe.base_url}/_standin/faults", json={"fail_next": 1, "status": 503}, timeout=5)

    assert response.json() == {"pending_faults": 1}
    with pytest.raises(stripe.APIError) as caught:
        create(fake_stripe)
    assert caught.value.http_status == 503


def test_admin_latency_and_reset(fake_stripe):
    base = fake_stripe.base_url
    create(fake_stripe)

    requests.post(f"{base}/_standin/latency", json={"seconds": 0.05}, timeout=5)
    assert fake_stripe.latency == 0.05
    requests.post(f"{base}/_standin/reset", timeout=5)

    assert fake_stripe.latency == 0
    assert fake_stripe.sessions == []
    assert fake_stripe.request_count == 0


def test_admin_requests_are_not_logged_as_api_calls(fake_stripe):
    requests.get(f"{fake_stripe.base_url}/_standin/events", timeout=5)

    assert fake_stripe.request_count == 0


# -- server behaviour ---------------------------------------------------------


def test_many_concurrent_keep_alive_connections_are_served(fake_stripe):
    client = make_client(fake_stripe)  # RequestsClient keeps one connection per thread
    workers = 64
    start = threading.Barrier(workers)
    failures = []

    def work():
        try:
            start.wait()
            session = client.v1.checkout.sessions.create(params=session_params())
            for _ in range(3):
                client.v1.checkout.sessions.retrieve(session.id)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert failures == []
    assert fake_stripe.request_count == workers * 4


def test_the_stand_in_reads_only_the_public_stripe_api():
    """Private SDK modules (stripe._…) can change in any release; the stand-in must survive upgrades."""
    imported = set()
    for source in (ROOT / "devtools" / "stripe_standin").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)

    stripe_modules = {name for name in imported if name.split(".")[0] == "stripe"}
    assert stripe_modules  # the check looked at the right files
    assert [name for name in stripe_modules if any(part.startswith("_") for part in name.split("."))] == []


def test_decode_form_builds_nested_lists_and_objects():
    decoded = decode_form(
        "line_items[0][price_data][currency]=usd&line_items[1][quantity]=2"
        "&metadata[k]=v&expand[]=line_items&expand[]=x&name=a+b"
    )

    assert decoded == {
        "line_items": [{"price_data": {"currency": "usd"}}, {"quantity": "2"}],
        "metadata": {"k": "v"},
        "expand": ["line_items", "x"],
        "name": "a b",
    }


def test_command_line_serves_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.stripe_standin", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = process.stdout.readline().split()[-1]
        response = requests.get(f"{url}/_standin/events", timeout=5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert url.startswith("http://127.0.0.1:")
    assert response.json()["data"] == []


def test_list_returns_sessions_of_a_status_newest_first(fake_stripe):
    first, second, third = (create(fake_stripe) for _ in range(3))
    make_client(fake_stripe).v1.checkout.sessions.expire(third.id)

    page = make_client(fake_stripe).v1.checkout.sessions.list(params={"status": "open", "limit": 10})

    assert [s.id for s in page.data] == [second.id, first.id]
    assert page.has_more is False
