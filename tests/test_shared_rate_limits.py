"""Limits that hold across instances: real `functions-framework` processes sharing one store.

Each store a deploy may share (Firestore, Redis) is run for real: Google's
Firestore emulator, and Debian's redis-server.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import FRONTEND_URL, TEST_KEY, WEBHOOK_SECRET, local_env

CREATE = "/api/checkout/embedded-session"
STATUS = "/api/checkout/session-status"
CLIENT = {"X-Forwarded-For": "203.0.113.7"}


def warm_up(project: str) -> None:
    """One write first: a freshly started emulator answers its first writes slower than the limiter waits."""
    from google.cloud import firestore

    client = firestore.Client(project=project)
    try:
        client.collection("warm_up").document("first").set({"at": firestore.SERVER_TIMESTAMP})
    finally:
        client.close()


@pytest.fixture(params=["firestore", "redis"])
def shared_store(request) -> dict:
    """The settings that point an instance at one shared store."""
    if request.param == "firestore":
        project = request.getfixturevalue("firestore_project")
        warm_up(project)
        return {
            "RATE_LIMIT_STORAGE_URI": "firestore://",
            "GOOGLE_CLOUD_PROJECT": project,
            "FIRESTORE_EMULATOR_HOST": request.getfixturevalue("firestore_emulator"),
        }
    return {"RATE_LIMIT_STORAGE_URI": request.getfixturevalue("redis_server").url}


@pytest.fixture
def instance_env(shared_store, standin, tmp_path) -> dict:
    """One instance's environment: three creates a day per client, counted in the shared store."""
    return local_env(
        STRIPE_SECRET_KEY=TEST_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        FRONTEND_URL=FRONTEND_URL,
        STRIPE_API_BASE=standin.base_url,
        PAYMENTS_STORE=f"sqlite:///{tmp_path / 'payments.db'}",
        RATE_LIMIT_CREATE="3/day",
        RATE_LIMIT_STATUS="2/day",
        **shared_store,
    )


def create(instance, headers=CLIENT):
    return requests.post(instance.base + CREATE, json={}, headers=headers, timeout=10)


def test_two_instances_enforce_one_combined_limit(served_api, instance_env, standin):
    first, second = served_api(instance_env), served_api(instance_env)

    codes = [create(instance).status_code for instance in (first, second, first)]
    refused = [create(second), create(first)]

    assert codes == [200, 200, 200]
    assert [response.status_code for response in refused] == [429, 429]
    assert all(int(response.headers["Retry-After"]) > 0 for response in refused)
    assert len(standin.sessions) == 3


def test_status_is_counted_across_instances_apart_from_create(served_api, instance_env):
    first, second = served_api(instance_env), served_api(instance_env)
    query = {"session_id": "cs_test_a1B2c3D4e5F6g7H8i9J0"}

    codes = [
        requests.get(instance.base + STATUS, params=query, headers=CLIENT, timeout=10).status_code
        for instance in (first, second, first)
    ]

    assert codes == [404, 404, 429]
    assert create(second).status_code == 200


def test_the_limit_survives_an_instance_restart(served_api, instance_env):
    first = served_api(instance_env)
    assert [create(first).status_code for _ in range(3)] == [200, 200, 200]
    first.stop()

    restarted = served_api(instance_env)

    assert create(restarted).status_code == 429
    assert create(restarted, {"X-Forwarded-For": "198.51.100.9"}).status_code == 200
