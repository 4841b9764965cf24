"""CORS for the browser-facing paths, and routing in the `api` entry point."""

from __future__ import annotations

import pytest

from tests.conftest import FRONTEND_URL

CREATE = "/api/checkout/embedded-session"
STATUS = "/api/checkout/session-status"


@pytest.mark.parametrize("path", [CREATE, STATUS])
def test_preflight_from_an_allowed_origin_is_a_204_with_cors_headers(client, path):
    response = client.options(
        path,
        headers={
            "Origin": FRONTEND_URL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key",
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND_URL
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, Idempotency-Key, X-Firebase-AppCheck"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.headers["Vary"] == "Origin"


def test_preflight_from_another_origin_gets_no_cors_headers(client):
    response = client.options(CREATE, headers={"Origin": "https://evil.example"})

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_response_to_an_allowed_origin_names_it(client):
    response = client.post(CREATE, json={}, headers={"Origin": FRONTEND_URL})

    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND_URL
    assert response.headers["Vary"] == "Origin"


def test_error_to_an_allowed_origin_is_readable_by_the_page(client):
    response = client.post(CREATE, content="nope", headers={"Origin": FRONTEND_URL})

    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND_URL


def test_response_to_another_origin_has_no_allow_origin(client):
    response = client.post(CREATE, json={}, headers={"Origin": "https://evil.example"})

    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json"])
def test_a_post_from_another_origin_is_refused_before_any_work(client, standin, content_type):
    """A cross-site form or text/plain POST needs no preflight: the origin check must stop it."""
    response = client.post(
        CREATE, content="{}", headers={"Origin": "https://evil.example", "Content-Type": content_type}
    )

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert standin.request_count == 0


def test_a_status_read_from_another_origin_is_refused_before_any_work(client, standin):
    response = client.get(STATUS, params={"session_id": "cs_test_abc"}, headers={"Origin": "https://evil.example"})

    assert response.status_code == 403
    assert standin.request_count == 0


def test_a_request_without_origin_is_served(client, standin):
    """Servers and curl send no Origin: they are not browsers, and CORS does not concern them."""
    assert client.post(CREATE, json={}).status_code == 200
    assert standin.request_count == 1


@pytest.mark.parametrize("path, allow", [(CREATE, "POST, OPTIONS"), (STATUS, "GET, OPTIONS")])
def test_options_without_origin_is_a_405_not_a_refused_preflight(client, path, allow):
    response = client.options(path)

    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert "error" in response.json()


def test_allowed_origins_setting_replaces_the_frontend_default(client, monkeypatch):
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://app.example, https://staging.example")

    allowed = client.options(CREATE, headers={"Origin": "https://staging.example"})
    frontend = client.options(CREATE, headers={"Origin": FRONTEND_URL})

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://staging.example"
    assert frontend.status_code == 403


def test_any_origin_when_configured_with_a_star(client, monkeypatch):
    monkeypatch.setenv("ALLOWED_ORIGINS", "*")

    response = client.options(CREATE, headers={"Origin": "https://anywhere.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_webhook_never_sends_cors_headers(client):
    response = client.post("/webhook", content="{}", headers={"Origin": FRONTEND_URL})

    assert not [name for name in response.headers if name.startswith("Access-Control-")]


def test_webhook_does_not_answer_preflights(client):
    response = client.options("/webhook", headers={"Origin": FRONTEND_URL})

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_unknown_path_is_a_404_json(client):
    response = client.get("/api/checkout/nothing-here")

    assert response.status_code == 404
    assert "error" in response.json()


def test_trailing_slash_routes_to_the_same_endpoint(client):
    assert client.post(CREATE + "/", json={}).status_code == 200


def test_a_misconfigured_instance_answers_json_500_naming_the_setting(client, monkeypatch):
    monkeypatch.setenv("FRONTEND_URL", "ftp://nope")

    response = client.post(CREATE, json={})

    assert response.status_code == 500
    assert "FRONTEND_URL" in response.json()["error"]
