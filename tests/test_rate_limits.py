"""Per-client-IP limits on create and status."""

from __future__ import annotations

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


def test_clients_are_counted_apart(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_CREATE", "1/minute")

    assert post_from(client, "203.0.113.7").status_code == 200
    assert post_from(client, "198.51.100.9").status_code == 200
    assert post_from(client, "203.0.113.7").status_code == 429


def test_a_forged_first_forwarded_entry_does_not_escape_the_limit(client, monkeypatch):
    """Google's front end appends the real address; what a client sends comes before it."""
    monkeypatch.setenv("RATE_LIMIT_CREATE", "1/minute")

    assert post_from(client, "1.1.1.1, 203.0.113.7").status_code == 200
    assert post_from(client, "2.2.2.2, 203.0.113.7").status_code == 429


def test_behind_a_load_balancer_the_client_is_two_hops_back(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_CREATE", "1/minute")
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "2")

    assert post_from(client, "9.9.9.9, 203.0.113.7, 35.191.0.1").status_code == 200
    assert post_from(client, "8.8.8.8, 198.51.100.9, 35.191.0.1").status_code == 200
    assert post_from(client, "7.7.7.7, 203.0.113.7, 35.191.0.1").status_code == 429


def test_a_bad_rate_setting_is_a_500_naming_it(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_CREATE", "lots")

    response = post_from(client, "203.0.113.7")

    assert response.status_code == 500
    assert "RATE_LIMIT_CREATE" in response.json()["error"]
