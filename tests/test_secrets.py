"""Secret settings read from Secret Manager, through the real client over gRPC."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import stripe

from common import secrets
from common.errors import SettingError
from tests.conftest import TEST_KEY, WEBHOOK_SECRET

KEY_VERSION = "projects/hero-me/secrets/stripe-secret-key/versions/3"
WEBHOOK_VERSION = "projects/hero-me/secrets/stripe-webhook-secret/versions/latest"
CREATE = "/api/checkout/embedded-session"


@pytest.fixture
def secret_manager(secret_manager_server, monkeypatch, env):
    """Secrets configured as version names, served by a local Secret Manager."""
    secret_manager_server.secrets.update(
        {KEY_VERSION: TEST_KEY.encode() + b"\n", WEBHOOK_VERSION: WEBHOOK_SECRET.encode()}
    )
    monkeypatch.setenv("SECRET_MANAGER_ENDPOINT", secret_manager_server.address)
    monkeypatch.setenv("STRIPE_SECRET_KEY", KEY_VERSION)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_VERSION)
    return secret_manager_server


def test_a_key_named_by_version_is_read_from_secret_manager(client, secret_manager, standin):
    response = client.post(CREATE, json={})

    assert response.status_code == 200
    assert secret_manager.calls[KEY_VERSION] == 1


def test_a_secret_is_read_once_per_instance(client, secret_manager):
    client.post(CREATE, json={})
    client.post(CREATE, json={})
    client.get("/api/checkout/session-status", params={"session_id": "cs_test_abc123"})

    assert secret_manager.calls[KEY_VERSION] == 1


def test_the_webhook_secret_is_read_from_secret_manager(client, secret_manager):
    payload = json.dumps(
        {"object": "event", "id": "evt_1", "type": "customer.created", "created": 1, "data": {"object": {}}}
    )
    header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
    response = client.post("/webhook", content=payload, headers={"Stripe-Signature": header})

    assert response.status_code == 200
    assert secret_manager.calls[WEBHOOK_VERSION] == 1


def test_a_corrupted_payload_is_refused_by_its_checksum(client, secret_manager, standin):
    secret_manager.corrupt(KEY_VERSION)

    response = client.post(CREATE, json={})

    assert response.status_code == 500
    assert response.json() == {
        "error": "Server misconfigured: STRIPE_SECRET_KEY failed its CRC32C check when read from Secret Manager."
    }
    assert standin.request_count == 0


def test_a_secret_that_is_not_utf8_is_refused_naming_the_setting(client, secret_manager, standin):
    secret_manager.secrets[KEY_VERSION] = b"sk_test_\xff"

    response = client.post(CREATE, json={})

    assert response.json() == {"error": "Server misconfigured: STRIPE_SECRET_KEY is not UTF-8 text in Secret Manager."}
    assert standin.request_count == 0


def test_a_missing_version_is_a_500_naming_the_setting(client, secret_manager, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "projects/hero-me/secrets/nope/versions/1")

    response = client.post(CREATE, json={})

    assert response.status_code == 500
    assert "STRIPE_SECRET_KEY" in response.json()["error"]


def test_no_secret_value_is_logged(client, secret_manager, log_lines):
    client.post(CREATE, json={})

    assert TEST_KEY not in json.dumps(log_lines())


def test_a_plain_value_never_touches_secret_manager(client, secret_manager_server, monkeypatch, env):
    monkeypatch.setenv("SECRET_MANAGER_ENDPOINT", secret_manager_server.address)

    assert client.post(CREATE, json={}).status_code == 200
    assert sum(secret_manager_server.calls.values()) == 0


# -- Secret Manager slow or unreachable: bounded, single-flight, failure remembered ----------------

# What a buyer's page may wait for at worst: the read's own bound, plus a little.
ANSWER_WITHIN_SECONDS = 10


def closed_port_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def concurrent_creates(client, count: int) -> list[tuple[object, float]]:
    """`count` create requests at once; each answer with how long it took."""

    def create(_):
        started = time.monotonic()
        response = client.post(CREATE, json={})
        return response, time.monotonic() - started

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(create, range(count)))


def assert_json_500_naming_the_key(response):
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert "STRIPE_SECRET_KEY" in response.json()["error"]


def test_a_stalled_secret_manager_is_a_json_500_naming_the_setting_within_ten_seconds(client, secret_manager, standin):
    secret_manager.stall()

    answers = concurrent_creates(client, 8)

    for response, took in answers:
        # Whichever bound ends the read first: ours ("in time") or the client's deadline (DeadlineExceeded).
        assert response.json()["error"] in (
            "Server misconfigured: STRIPE_SECRET_KEY could not be read from Secret Manager in time.",
            "Server misconfigured: STRIPE_SECRET_KEY could not be read from Secret Manager (DeadlineExceeded).",
        )
        assert took < ANSWER_WITHIN_SECONDS
    assert secret_manager.calls[KEY_VERSION] == 1  # the eight requests shared one read
    assert standin.request_count == 0


def test_an_unreachable_secret_manager_is_a_json_500_within_ten_seconds(client, secret_manager, monkeypatch):
    monkeypatch.setenv("SECRET_MANAGER_ENDPOINT", closed_port_address())

    answers = concurrent_creates(client, 4)

    for response, took in answers:
        assert_json_500_naming_the_key(response)
        assert took < ANSWER_WITHIN_SECONDS


def test_a_failed_read_is_remembered_so_a_burst_does_not_dial_again(client, secret_manager, monkeypatch):
    monkeypatch.setattr(secrets, "FETCH_TIMEOUT_SECONDS", 1.0)
    secret_manager.stall()
    assert_json_500_naming_the_key(client.post(CREATE, json={}))

    answers = concurrent_creates(client, 20)

    for response, took in answers:
        assert_json_500_naming_the_key(response)
        assert took < 0.5
    assert secret_manager.calls[KEY_VERSION] == 1


def test_a_failed_read_is_tried_again_once_its_failure_expires(client, secret_manager, monkeypatch):
    monkeypatch.setattr(secrets, "FETCH_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(secrets, "RETRY_AFTER_SECONDS", 0.5)
    secret_manager.stall()
    client.post(CREATE, json={})
    time.sleep(0.6)

    assert_json_500_naming_the_key(client.post(CREATE, json={}))
    assert secret_manager.calls[KEY_VERSION] == 2


def test_each_request_refused_by_a_remembered_failure_logs_its_own_traceback_only(
    client, secret_manager, monkeypatch, log_lines
):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "projects/hero-me/secrets/nope/versions/1")
    for _ in range(3):
        client.post(CREATE, json={})

    refusals = [line["message"] for line in log_lines() if line.get("status") == 500]
    assert [message.splitlines()[0] for message in refusals] == 3 * [
        "create_embedded_session 500: STRIPE_SECRET_KEY could not be read from Secret Manager (NotFound)"
    ]
    assert refusals[2] == refusals[1]  # the same traceback, not the earlier ones' piled up in front of it
    assert secret_manager.calls["projects/hero-me/secrets/nope/versions/1"] == 1


# -- what a secret's value must look like ------------------------------------------


def test_a_missing_secret_names_the_setting():
    with pytest.raises(SettingError, match="STRIPE_WEBHOOK_SECRET is not set"):
        secrets.webhook_secrets("")


def test_a_key_that_is_not_a_stripe_key_is_refused_without_quoting_it():
    with pytest.raises(SettingError) as refused:
        secrets.stripe_secret_key("pk_test_publishable")

    assert refused.value.name == "STRIPE_SECRET_KEY"
    assert "pk_test_publishable" not in str(refused.value)


def test_several_webhook_secrets_are_accepted_for_rolling():
    assert secrets.webhook_secrets("whsec_old, whsec_new") == ("whsec_old", "whsec_new")


def test_a_webhook_secret_that_is_not_whsec_is_refused():
    with pytest.raises(SettingError, match="STRIPE_WEBHOOK_SECRET"):
        secrets.webhook_secrets("whsec_ok,oops")


def test_a_plain_value_is_used_as_it_is():
    assert asyncio.run(secrets.Secrets().resolve("STRIPE_SECRET_KEY", "sk_test_abc")) == "sk_test_abc"


@pytest.mark.parametrize("key", ["sk_test_abc", "sk_live_abc", "rk_test_abc", "rk_live_abc"])
def test_each_kind_of_stripe_secret_or_restricted_key_is_accepted(key):
    assert secrets.stripe_secret_key(key) == key


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "STRIPE_SECRET_KEY is not set"),
        ("pk_test_publishable", "STRIPE_SECRET_KEY is not a Stripe secret key (sk_… or rk_…)"),
        ("SK_TEST_abc", "STRIPE_SECRET_KEY is not a Stripe secret key (sk_… or rk_…)"),
    ],
)
def test_a_secret_key_missing_or_of_another_kind_is_refused_with_its_message(value, message):
    with pytest.raises(SettingError) as refused:
        secrets.stripe_secret_key(value)

    assert str(refused.value) == message


@pytest.mark.parametrize("value", ["whsec_ok,oops", " , ", "WHSEC_abc"])
def test_webhook_secrets_that_are_not_all_signing_secrets_are_refused_with_their_message(value):
    with pytest.raises(SettingError) as refused:
        secrets.webhook_secrets(value)

    assert str(refused.value) == "STRIPE_WEBHOOK_SECRET must be one or more comma-separated whsec_… signing secrets"


def test_blank_entries_between_webhook_secrets_are_skipped():
    assert secrets.webhook_secrets("whsec_old,, whsec_new ,") == ("whsec_old", "whsec_new")


def test_a_webhook_secret_that_cannot_be_read_is_a_500_naming_it(client, secret_manager, monkeypatch):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "projects/hero-me/secrets/nope/versions/1")

    response = client.post("/webhook", content="{}", headers={"Stripe-Signature": "t=1,v1=ab"})

    assert response.status_code == 500
    assert response.json() == {
        "error": "Server misconfigured: STRIPE_WEBHOOK_SECRET could not be read from Secret Manager (NotFound)."
    }


def test_a_key_that_cannot_be_read_says_why_in_its_answer(client, secret_manager, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "projects/hero-me/secrets/nope/versions/1")

    response = client.post(CREATE, json={})

    assert response.json() == {
        "error": "Server misconfigured: STRIPE_SECRET_KEY could not be read from Secret Manager (NotFound)."
    }


# -- one Secrets object, read directly: what a caller sees -------------------------


def resolve(endpoint: str | None, value: str = KEY_VERSION) -> str:
    return asyncio.run(secrets.Secrets(endpoint).resolve("STRIPE_SECRET_KEY", value))


def refusal(endpoint: str | None, value: str = KEY_VERSION) -> str:
    with pytest.raises(SettingError) as refused:
        resolve(endpoint, value)
    return str(refused.value)


@pytest.fixture
def no_google_credentials(monkeypatch, tmp_path):
    """Credentials looked for are missing at once, rather than searched for on a metadata server."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))


@pytest.fixture
def google_credentials(monkeypatch, tmp_path):
    """Credentials that load without any network: a client can be made, and would fetch a token only to call."""
    path = tmp_path / "credentials.json"
    fields = {"client_id": "id", "client_secret": "secret", "refresh_token": "token", "quota_project_id": "hero-me"}
    path.write_text(json.dumps({"type": "authorized_user", **fields}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))


def test_a_value_read_is_kept_and_answered_again_without_a_read(secret_manager_server):
    secret_manager_server.secrets[KEY_VERSION] = TEST_KEY.encode()
    resolver = secrets.Secrets(secret_manager_server.address)

    async def twice():
        return [await resolver.resolve("STRIPE_SECRET_KEY", KEY_VERSION) for _ in range(2)]

    assert asyncio.run(twice()) == [TEST_KEY, TEST_KEY]
    assert secret_manager_server.calls[KEY_VERSION] == 1


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_a_local_endpoint_is_spoken_to_in_plain_grpc_without_google_credentials(
    secret_manager_server, no_google_credentials, host
):
    secret_manager_server.secrets[KEY_VERSION] = TEST_KEY.encode()
    port = secret_manager_server.address.rsplit(":", 1)[1]

    assert resolve(f"{host}:{port}") == TEST_KEY


@pytest.mark.parametrize("endpoint", [None, "secretmanager.europe-west1.rep.googleapis.com"])
def test_any_other_endpoint_is_asked_over_tls_with_the_instances_google_credentials(no_google_credentials, endpoint):
    assert refusal(endpoint) == "STRIPE_SECRET_KEY could not be read from Secret Manager (DefaultCredentialsError)"


@pytest.mark.parametrize(
    ("endpoint", "api_endpoint"),
    [
        (None, "secretmanager.googleapis.com"),
        ("secretmanager.europe-west1.rep.googleapis.com", "secretmanager.europe-west1.rep.googleapis.com"),
    ],
)
def test_the_client_talks_to_the_endpoint_set_or_else_to_googles(google_credentials, endpoint, api_endpoint):
    assert secrets.Secrets(endpoint)._get_client().api_endpoint == api_endpoint


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL])
def test_a_transient_error_is_retried_within_the_bound(secret_manager_server, code):
    secret_manager_server.secrets[KEY_VERSION] = TEST_KEY.encode()
    secret_manager_server.fail(code, times=1)

    assert resolve(secret_manager_server.address) == TEST_KEY
    assert secret_manager_server.calls[KEY_VERSION] == 2


def test_a_refusal_is_not_retried_and_names_its_cause(secret_manager_server):
    secret_manager_server.secrets[KEY_VERSION] = TEST_KEY.encode()
    secret_manager_server.fail(grpc.StatusCode.PERMISSION_DENIED)

    assert refusal(secret_manager_server.address) == (
        "STRIPE_SECRET_KEY could not be read from Secret Manager (PermissionDenied)"
    )
    assert secret_manager_server.calls[KEY_VERSION] == 1


def test_a_secret_manager_that_stays_unavailable_is_not_dialled_after_the_bound(secret_manager_server, monkeypatch):
    monkeypatch.setattr(secrets, "FETCH_TIMEOUT_SECONDS", 0.5)
    secret_manager_server.fail(grpc.StatusCode.UNAVAILABLE)

    assert "STRIPE_SECRET_KEY could not be read from Secret Manager" in refusal(secret_manager_server.address)
    first, *_ = dialled = secret_manager_server.call_times[KEY_VERSION]
    time.sleep(max(0.0, first + 4.5 - time.monotonic()))  # backing off, a retry with no end would have dialled again

    assert all(at - first < 0.5 + 0.2 for at in dialled)


def test_a_stalled_read_is_given_up_at_the_bound_not_left_hanging(secret_manager_server, monkeypatch):
    monkeypatch.setattr(secrets, "FETCH_TIMEOUT_SECONDS", 1.0)
    secret_manager_server.stall()

    refusal(secret_manager_server.address)
    given_up_by = time.monotonic() + 2
    while not secret_manager_server.abandoned and time.monotonic() < given_up_by:
        time.sleep(0.05)

    assert secret_manager_server.abandoned and secret_manager_server.abandoned[0] < 1.0 + 0.5


def test_a_read_that_cannot_start_in_time_is_refused_at_the_bound_and_never_made(secret_manager_server, monkeypatch):
    """Reads run on the event loop's worker threads, which other blocking work (DNS lookups, files) shares."""
    monkeypatch.setattr(secrets, "FETCH_TIMEOUT_SECONDS", 0.5)
    secret_manager_server.secrets[KEY_VERSION] = TEST_KEY.encode()
    busy = threading.Event()

    async def with_every_worker_busy():
        loop = asyncio.get_running_loop()
        for _ in range(40):  # more than the default executor's most workers (32)
            loop.run_in_executor(None, busy.wait)
        started = time.monotonic()
        try:
            with pytest.raises(SettingError) as refused:
                await secrets.Secrets(secret_manager_server.address).resolve("STRIPE_SECRET_KEY", KEY_VERSION)
            return str(refused.value), time.monotonic() - started
        finally:
            busy.set()

    message, took = asyncio.run(with_every_worker_busy())

    assert message == "STRIPE_SECRET_KEY could not be read from Secret Manager in time"
    assert took < 0.5 + 0.3
    assert secret_manager_server.calls[KEY_VERSION] == 0
