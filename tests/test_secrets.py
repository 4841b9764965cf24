"""Secret settings read from Secret Manager, through the real client over gRPC."""

from __future__ import annotations

import json

import pytest
import stripe

from tests.conftest import TEST_KEY, WEBHOOK_SECRET

KEY_VERSION = "projects/hero-me/secrets/stripe-secret-key/versions/3"
WEBHOOK_VERSION = "projects/hero-me/secrets/stripe-webhook-secret/versions/latest"
CREATE = "/api/checkout/embedded-session"


@pytest.fixture
def secret_manager(secret_manager_server, monkeypatch, env):
    """Secrets configured as version names, served by a local Secret Manager."""
    secret_manager_server.secrets.update({KEY_VERSION: TEST_KEY.encode() + b"\n", WEBHOOK_VERSION: WEBHOOK_SECRET.encode()})
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
    client.get("/api/checkout/session-status", query_string={"session_id": "cs_test_abc123"})

    assert secret_manager.calls[KEY_VERSION] == 1


def test_the_webhook_secret_is_read_from_secret_manager(client, secret_manager):
    payload = json.dumps({"object": "event", "id": "evt_1", "type": "customer.created", "created": 1,
                          "data": {"object": {}}})
    header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
    response = client.post("/webhook", data=payload, headers={"Stripe-Signature": header})

    assert response.status_code == 200
    assert secret_manager.calls[WEBHOOK_VERSION] == 1


def test_a_corrupted_payload_is_refused_by_its_checksum(client, secret_manager, standin):
    secret_manager.corrupt(KEY_VERSION)

    response = client.post(CREATE, json={})

    assert response.status_code == 500
    assert "STRIPE_SECRET_KEY" in response.get_json()["error"]
    assert "CRC32C" in response.get_json()["error"]
    assert standin.request_count == 0


def test_a_missing_version_is_a_500_naming_the_setting(client, secret_manager, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "projects/hero-me/secrets/nope/versions/1")

    response = client.post(CREATE, json={})

    assert response.status_code == 500
    assert "STRIPE_SECRET_KEY" in response.get_json()["error"]


def test_no_secret_value_is_logged(client, secret_manager, log_lines):
    client.post(CREATE, json={})

    assert TEST_KEY not in json.dumps(log_lines())


def test_a_plain_value_never_touches_secret_manager(client, secret_manager_server, monkeypatch, env):
    monkeypatch.setenv("SECRET_MANAGER_ENDPOINT", secret_manager_server.address)

    assert client.post(CREATE, json={}).status_code == 200
    assert sum(secret_manager_server.calls.values()) == 0
