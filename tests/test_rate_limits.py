"""Per-client-IP limits on create and status, and what they do when a shared store is down."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from starlette.testclient import TestClient

from common import ratelimit

CREATE = "/api/checkout/embedded-session"
STATUS = "/api/checkout/session-status"


def post_from(client, xff: str):
    return client.post(CREATE, json={}, headers={"X-Forwarded-For": xff})


def test_create_over_the_limit_is_a_429_with_retry_after(client, monkeypatch, standin):
    monkeypatch.setenv("RATE_LIMIT_CREATE", "2/minute")

    codes = [post_from(client, "203.0.113.7").status_code for _ in range(3)]
    refused = post_from(client, "203.0.113.7")

    assert codes == [200, 200, 429]
    assert refused.json()["error"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert len(standin.sessions) == 2


def test_status_has_its_own_limit(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_STATUS", "1/minute")
    query = {"session_id": "cs_test_a1B2c3D4e5F6g7H8i9J0"}

    first = client.get(STATUS, params=query, headers={"X-Forwarded-For": "203.0.113.7"})
    second = client.get(STATUS, params=query, headers={"X-Forwarded-For": "203.0.113.7"})

    assert first.status_code == 404
    assert second.status_code == 429
    assert post_from(client, "203.0.113.7").status_code == 200


def status_from(client, xff: str):
    return client.get(STATUS, params={"session_id": "cs_test_a1B2c3D4e5F6g7H8i9J0"}, headers={"X-Forwarded-For": xff})


# Each endpoint's rate setting, how to call it from an address, and its answer when not limited.
ENDPOINTS = {
    "create": ("RATE_LIMIT_CREATE", post_from, 200),
    "status": ("RATE_LIMIT_STATUS", status_from, 404),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_clients_are_counted_apart(client, monkeypatch, endpoint):
    setting, send, answered = ENDPOINTS[endpoint]
    monkeypatch.setenv(setting, "1/minute")

    assert send(client, "203.0.113.7").status_code == answered
    assert send(client, "198.51.100.9").status_code == answered
    assert send(client, "203.0.113.7").status_code == 429


def test_a_forged_first_forwarded_entry_does_not_escape_the_limit(client, monkeypatch):
    """Google's front end appends the real address; what a client sends comes before it."""
    monkeypatch.setenv("RATE_LIMIT_CREATE", "1/minute")

    assert post_from(client, "1.1.1.1, 203.0.113.7").status_code == 200
    assert post_from(client, "2.2.2.2, 203.0.113.7").status_code == 429


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_behind_a_load_balancer_the_client_is_two_hops_back(client, monkeypatch, endpoint):
    setting, send, answered = ENDPOINTS[endpoint]
    monkeypatch.setenv(setting, "1/minute")
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "2")

    assert send(client, "9.9.9.9, 203.0.113.7, 35.191.0.1").status_code == answered
    assert send(client, "8.8.8.8, 198.51.100.9, 35.191.0.1").status_code == answered
    assert send(client, "7.7.7.7, 203.0.113.7, 35.191.0.1").status_code == 429


def test_a_bad_rate_setting_is_a_500_naming_it(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_CREATE", "lots")

    response = post_from(client, "203.0.113.7")

    assert response.status_code == 500
    assert "RATE_LIMIT_CREATE" in response.json()["error"]


def test_a_request_without_a_forwarded_address_is_counted_by_its_peer_address(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_CREATE", "1/minute")

    assert client.post(CREATE, json={}).status_code == 200
    assert client.post(CREATE, json={}).status_code == 429


def from_peer(client: TestClient, address: str) -> TestClient:
    """The same instance, reached straight from `address` with no proxy in front."""
    other = TestClient(client.app, client=(address, 50000))
    other.portal = client.portal  # the instance's event loop, where its connections live
    return other


def test_without_forwarded_addresses_clients_are_counted_apart_by_their_peer_address(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_CREATE", "1/minute")

    assert from_peer(client, "203.0.113.7").post(CREATE, json={}).status_code == 200
    assert from_peer(client, "198.51.100.9").post(CREATE, json={}).status_code == 200
    assert from_peer(client, "203.0.113.7").post(CREATE, json={}).status_code == 429


def test_with_no_trusted_proxy_the_forwarded_address_is_ignored_and_peers_are_counted_apart(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_CREATE", "1/minute")
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "0")

    assert post_from(from_peer(client, "203.0.113.7"), "1.1.1.1").status_code == 200
    assert post_from(from_peer(client, "203.0.113.7"), "2.2.2.2").status_code == 429
    assert post_from(from_peer(client, "198.51.100.9"), "1.1.1.1").status_code == 200


# --------------------------------------------------------------------------
# A shared store that is down or slow


@pytest.fixture
def black_hole():
    """A TCP port that accepts connections and never answers: a store that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.fixture(params=["firestore", "redis"])
def unreachable_store(request, monkeypatch, black_hole):
    """RATE_LIMIT_STORAGE_URI pointed at a store that refuses connections, or at one that hangs."""

    def point(hangs: bool = False):
        address = black_hole if hangs else "127.0.0.1:9"  # the discard port: nothing listens
        if request.param == "firestore":
            monkeypatch.setenv("RATE_LIMIT_STORAGE_URI", "firestore://")
            monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", address)
            monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "outage-test")
        else:
            monkeypatch.setenv("RATE_LIMIT_STORAGE_URI", f"redis://{address}")

    point.kind = request.param
    return point


def outage_lines(log_lines) -> list[dict]:
    return [line for line in log_lines() if line.get("message", "").startswith("Rate-limit counts unavailable")]


def test_a_store_outage_lets_create_through_counted_by_the_instance(client, monkeypatch, unreachable_store, log_lines):
    unreachable_store()
    monkeypatch.setenv("RATE_LIMIT_CREATE", "2/minute")

    codes = [post_from(client, "203.0.113.7").status_code for _ in range(3)]

    assert codes == [200, 200, 429]
    lines = outage_lines(log_lines)
    assert len(lines) == 3
    assert {line["severity"] for line in lines} == {"WARNING"}
    assert {line["endpoint"] for line in lines} == {"create_embedded_session"}
    assert "203.0.113.7" not in repr(lines)


def test_with_fail_open_off_a_store_outage_refuses_create_with_a_503(
    client, monkeypatch, unreachable_store, standin, log_lines
):
    unreachable_store()
    monkeypatch.setenv("RATE_LIMIT_FAIL_OPEN_CREATE", "false")

    response = post_from(client, "203.0.113.7")

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]
    assert standin.request_count == 0
    (line,) = outage_lines(log_lines)
    assert line["severity"] == "ERROR" and line["endpoint"] == "create_embedded_session"


def test_status_is_never_refused_for_a_store_outage(client, monkeypatch, unreachable_store, log_lines):
    unreachable_store()
    monkeypatch.setenv("RATE_LIMIT_FAIL_OPEN_CREATE", "false")

    response = client.get(
        STATUS, params={"session_id": "cs_test_a1B2c3D4e5F6g7H8i9J0"}, headers={"X-Forwarded-For": "203.0.113.7"}
    )

    assert response.status_code == 404  # answered: the unknown session, not the outage
    (line,) = outage_lines(log_lines)
    assert line["severity"] == "WARNING" and line["endpoint"] == "session_status"


def test_a_store_that_hangs_is_given_up_after_the_timeout(client, unreachable_store, log_lines):
    unreachable_store(hangs=True)

    started = time.monotonic()
    response = post_from(client, "203.0.113.7")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert ratelimit.SHARED_TIMEOUT_SECONDS <= elapsed < ratelimit.SHARED_TIMEOUT_SECONDS + 1.5
    (line,) = outage_lines(log_lines)
    assert line["error"] == "TimeoutError"


def test_after_a_failure_the_store_is_left_alone_for_a_pause(client, monkeypatch, unreachable_store, log_lines):
    """An outage must not add a timeout to every request; the store is tried again after the pause."""
    unreachable_store(hangs=True)
    monkeypatch.setattr(ratelimit, "SHARED_PAUSE_SECONDS", 2.0)

    def timed_post() -> float:
        started = time.monotonic()
        assert post_from(client, "203.0.113.7").status_code == 200
        return time.monotonic() - started

    first, during_the_pause = timed_post(), timed_post()
    time.sleep(max(0.0, 2.2 - during_the_pause))
    after_the_pause = timed_post()

    assert first >= ratelimit.SHARED_TIMEOUT_SECONDS
    assert during_the_pause < 0.5
    assert after_the_pause >= ratelimit.SHARED_TIMEOUT_SECONDS
    assert [line["error"] for line in outage_lines(log_lines)] == ["TimeoutError"] * 3


# --------------------------------------------------------------------------
# Counts shared by instances, in a real Redis


def test_two_instances_sharing_redis_enforce_one_limit(new_client, monkeypatch, redis_server, log_lines):
    monkeypatch.setenv("RATE_LIMIT_STORAGE_URI", redis_server.url)
    monkeypatch.setenv("RATE_LIMIT_CREATE", "2/minute")
    first, second = new_client(), new_client()

    codes = [post_from(instance, "203.0.113.7").status_code for instance in (first, second, first, second)]

    assert codes == [200, 200, 429, 429]
    assert outage_lines(log_lines) == []


def test_an_instance_counting_in_redis_says_so_once(new_client, monkeypatch, redis_server, log_lines):
    monkeypatch.setenv("RATE_LIMIT_STORAGE_URI", redis_server.url)
    client = new_client()
    log_lines()

    post_from(client, "203.0.113.7")
    post_from(client, "203.0.113.7")

    assert [(line["severity"], line["message"]) for line in log_lines() if "counted in" in line.get("message", "")] == [
        ("INFO", "Rate limits are counted in redis through limits.")
    ]


def test_a_redis_limit_is_a_429_saying_when_to_retry(new_client, monkeypatch, redis_server):
    monkeypatch.setenv("RATE_LIMIT_STORAGE_URI", redis_server.url)
    monkeypatch.setenv("RATE_LIMIT_CREATE", "1/minute")
    client = new_client()
    post_from(client, "203.0.113.7")

    refused = post_from(client, "203.0.113.7")

    assert refused.status_code == 429
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
