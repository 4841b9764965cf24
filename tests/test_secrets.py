"""Secret settings read from Secret Manager, through the real client over gRPC."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

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
