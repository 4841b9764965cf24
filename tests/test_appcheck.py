"""Firebase App Check on create (and status when asked): tokens signed with a local key.

The keys are served as a JWKS from a local HTTP server, as App Check's
public endpoint serves them, and tokens are signed with PyJWT the way App
Check signs them (RS256, `kid` header).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request

from common import appcheck

ROOT = Path(__file__).resolve().parent.parent
CREATE = "/api/checkout/embedded-session"
STATUS = "/api/checkout/session-status"
PROJECT_NUMBER = "123456789012"
APP_ID = "1:123456789012:web:0a1b2c3d4e5f"


class SigningKey:
    def __init__(self, kid: str):
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        return {
            **jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True),
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
        }


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {kid: SigningKey(kid) for kid in ("key-1", "key-2", "not-published")}


class JwksServer:
    """App Check's JWKS endpoint on 127.0.0.1: publishes some keys, counts fetches, can fail, hang or answer garbage."""

    def __init__(self):
        self.published: list[SigningKey] = []
        self.body: bytes | None = None  # answered instead of the published keys
        self.fetches = 0
        self.down = False
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                time.sleep(server.delay)
                if server.down:
                    self.send_error(503)
                    return
                body = server.body or json.dumps({"keys": [key.jwk() for key in server.published]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting, as it should
                    pass

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1/jwks"
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.http.shutdown()
        self.http.server_close()
        self.thread.join()


@pytest.fixture
def jwks(keys):
    server = JwksServer()
    server.published = [keys["key-1"]]
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_check(env, monkeypatch, jwks):
    """App Check on for create, with keys from the local JWKS."""
    monkeypatch.setenv("APP_CHECK_PROJECT_NUMBER", PROJECT_NUMBER)
    monkeypatch.setenv("APP_CHECK_JWKS_URL", jwks.url)
    return jwks


class FromNow(int):
    """A time claim in seconds from when the token is signed, not from when the tests were collected."""


def claims(**changes) -> dict:
    now = int(time.time())
    changes = {k: now + v if isinstance(v, FromNow) else v for k, v in changes.items()}
    values = {
        "iss": f"https://firebaseappcheck.googleapis.com/{PROJECT_NUMBER}",
        "aud": [f"projects/{PROJECT_NUMBER}", "projects/herome-example"],
        "sub": APP_ID,
        "iat": now - 60,
        "exp": now + 3600,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def token(key: SigningKey, **changes) -> str:
    return jwt.encode(claims(**changes), key.private, algorithm="RS256", headers={"kid": key.kid})


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def create(client, app_token: str | None = None, **headers):
    if app_token is not None:
        headers["X-Firebase-AppCheck"] = app_token
    return client.post(CREATE, json={}, headers=headers)


def test_a_valid_token_is_accepted(client, app_check, keys, standin):
    response = create(client, token(keys["key-1"]))

    assert response.status_code == 200
    assert len(standin.sessions) == 1


def test_a_request_without_a_token_is_a_401_and_never_reaches_stripe(client, app_check, standin):
    response = create(client)

    assert response.status_code == 401
    assert response.json() == {"error": "Missing X-Firebase-AppCheck header: send an App Check token."}
    assert standin.request_count == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": FromNow(-appcheck.LEEWAY_SECONDS - 10)},
        {"aud": ["projects/999999999999", "projects/someone-else"]},
        {"aud": None},
        {"iss": "https://firebaseappcheck.googleapis.com/999999999999"},
        {"iss": "https://securetoken.google.com/herome-example"},
        {"sub": None},
        {"iat": FromNow(appcheck.LEEWAY_SECONDS + 60)},
    ],
    ids=[
        "expired",
        "wrong audience",
        "no audience",
        "another project's issuer",
        "another issuer",
        "no subject",
        "issued in the future",
    ],
)
def test_a_token_with_wrong_claims_is_a_401(client, app_check, keys, standin, changes):
    response = create(client, token(keys["key-1"], **changes))

    assert response.status_code == 401
    assert response.json()["error"]
    assert standin.request_count == 0


def test_a_token_signed_by_a_key_app_check_does_not_publish_is_a_401(client, app_check, keys, standin):
    forged = jwt.encode(claims(), keys["not-published"].private, algorithm="RS256", headers={"kid": "key-1"})

    assert create(client, forged).status_code == 401
    assert standin.request_count == 0


def test_a_tampered_payload_is_a_401(client, app_check, keys):
    header, _, signature = token(keys["key-1"]).split(".")
    tampered = f"{header}.{b64(claims(sub='1:123456789012:web:attacker'))}.{signature}"

    assert create(client, tampered).status_code == 401


def test_an_unsigned_token_is_a_401(client, app_check):
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'key-1'})}.{b64(claims())}."

    assert create(client, unsigned).status_code == 401
    assert app_check.fetches == 0  # refused on its header, before any key is looked up


def test_a_token_signed_with_the_public_key_as_an_hmac_secret_is_a_401(client, app_check, keys):
    """The classic algorithm confusion: anyone can sign HS256 with the published key."""
    public_pem = (
        keys["key-1"]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'key-1'})}.{b64(claims())}"
    signature = base64.urlsafe_b64encode(hmac.digest(public_pem, signing_input.encode(), "sha256")).rstrip(b"=")

    assert create(client, f"{signing_input}.{signature.decode()}").status_code == 401


@pytest.mark.parametrize("value", ["not-a-jwt", "a.b.c", "x" * (appcheck.MAX_TOKEN_CHARS + 1)])
def test_a_malformed_token_is_a_401(client, app_check, value):
    assert create(client, value).status_code == 401


def test_a_new_key_is_fetched_when_a_token_names_an_unknown_kid(client, app_check, keys, monkeypatch):
    monkeypatch.setattr(appcheck, "REFRESH_COOLDOWN_SECONDS", 0.0)
    assert create(client, token(keys["key-1"])).status_code == 200
    app_check.published = [keys["key-1"], keys["key-2"]]  # App Check starts signing with a new key

    response = create(client, token(keys["key-2"]))

    assert response.status_code == 200
    assert app_check.fetches == 2


def test_unknown_kids_do_not_make_us_fetch_the_keys_again_within_the_cooldown(client, app_check, keys):
    assert create(client, token(keys["key-1"])).status_code == 200

    codes = [
        create(
            client, jwt.encode(claims(), keys["key-1"].private, algorithm="RS256", headers={"kid": f"forged-{n}"})
        ).status_code
        for n in range(5)
    ]

    assert codes == [401] * 5
    assert app_check.fetches == 1


def test_keys_are_fetched_once_and_then_served_from_the_cache(client, app_check, keys):
    codes = [create(client, token(keys["key-1"])).status_code for _ in range(3)]

    assert codes == [200, 200, 200]
    assert app_check.fetches == 1


def test_jwks_down_with_no_cached_keys_is_a_503_to_retry(client, app_check, keys, standin):
    app_check.down = True

    response = create(client, token(keys["key-1"]))

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) == appcheck.RETRY_FETCH_AFTER_SECONDS
    assert standin.request_count == 0


def test_while_the_jwks_is_down_requests_are_refused_at_once_without_another_fetch(
    client, app_check, keys, monkeypatch
):
    monkeypatch.setattr(appcheck, "FETCH_TIMEOUT_SECONDS", 0.3)
    app_check.delay = 2.0
    assert create(client, token(keys["key-1"])).status_code == 503

    started = time.monotonic()
    response = create(client, token(keys["key-1"]))

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) == appcheck.RETRY_FETCH_AFTER_SECONDS
    assert time.monotonic() - started < 0.25
    assert app_check.fetches == 1


def test_the_keys_are_fetched_again_once_the_retry_interval_has_passed(client, app_check, keys, monkeypatch):
    monkeypatch.setattr(appcheck, "RETRY_FETCH_AFTER_SECONDS", 0.2)
    app_check.down = True
    assert create(client, token(keys["key-1"])).status_code == 503
    app_check.down = False

    time.sleep(0.25)

    assert create(client, token(keys["key-1"])).status_code == 200


def test_cached_keys_are_fetched_again_once_their_lifespan_has_passed(client, app_check, keys, monkeypatch):
    monkeypatch.setattr(appcheck, "KEYS_LIFESPAN_SECONDS", 0.3)
    assert create(client, token(keys["key-1"])).status_code == 200
    assert create(client, token(keys["key-1"])).status_code == 200
    assert app_check.fetches == 1

    time.sleep(0.4)

    assert create(client, token(keys["key-1"])).status_code == 200
    assert app_check.fetches == 2


def test_jwks_down_after_the_keys_are_cached_changes_nothing(client, app_check, keys):
    assert create(client, token(keys["key-1"])).status_code == 200
    app_check.down = True

    assert create(client, token(keys["key-1"])).status_code == 200


def test_a_jwks_that_hangs_is_given_up_after_the_fetch_timeout(client, app_check, keys, monkeypatch):
    monkeypatch.setattr(appcheck, "FETCH_TIMEOUT_SECONDS", 0.3)
    app_check.delay = 2.0

    started = time.monotonic()
    response = create(client, token(keys["key-1"]))

    assert response.status_code == 503
    assert time.monotonic() - started < appcheck.FETCH_TIMEOUT_SECONDS + 0.5


def test_the_log_line_names_the_reason_and_never_the_token(client, app_check, keys, log_lines):
    expired = token(keys["key-1"], exp=int(time.time()) - appcheck.LEEWAY_SECONDS - 10)
    log_lines()

    create(client, expired)

    (line,) = [line for line in log_lines() if line.get("endpoint") == "create_embedded_session"]
    assert line["status"] == 401
    assert line["app_check"] == "ExpiredSignatureError"
    assert expired not in json.dumps(line) and expired.split(".")[1] not in json.dumps(line)


def test_status_needs_no_token_unless_asked(client, app_check):
    response = client.get(STATUS, params={"session_id": "cs_test_a1B2c3D4e5F6g7H8i9J0"})

    assert response.status_code == 404


def test_status_needs_a_token_when_asked(client, app_check, keys, monkeypatch):
    monkeypatch.setenv("APP_CHECK_ON_STATUS", "true")
    query = {"session_id": "cs_test_a1B2c3D4e5F6g7H8i9J0"}

    without = client.get(STATUS, params=query)
    with_token = client.get(STATUS, params=query, headers={"X-Firebase-AppCheck": token(keys["key-1"])})

    assert without.status_code == 401
    assert with_token.status_code == 404


def test_app_check_off_accepts_requests_without_a_token(client, env, standin):
    assert create(client).status_code == 200


def test_app_check_on_status_without_a_project_number_is_a_500_naming_it(client, env, monkeypatch):
    monkeypatch.setenv("APP_CHECK_ON_STATUS", "true")

    response = client.get(STATUS, params={"session_id": "cs_test_a1B2c3D4e5F6g7H8i9J0"})

    assert response.status_code == 500
    assert "APP_CHECK_ON_STATUS" in response.json()["error"]


def test_the_same_idempotency_key_from_two_apps_gets_two_sessions(client, app_check, keys, standin):
    """The app id is part of the scope, so two apps behind one address never share a session."""
    first = create(client, token(keys["key-1"]), **{"Idempotency-Key": "click-1"})
    second = create(client, token(keys["key-1"], sub="1:123456789012:android:9f8e7d"), **{"Idempotency-Key": "click-1"})
    again = create(client, token(keys["key-1"]), **{"Idempotency-Key": "click-1"})

    assert first.json() != second.json()
    assert again.json() == first.json()
    assert len(standin.sessions) == 2


def test_pyjwt_is_imported_only_when_app_check_is_on():
    """PyJWT and cryptography cost ~22 ms of cold start; an instance that does not verify tokens skips them."""
    code = "import sys, main, checkout.create, checkout.status; print('jwt' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert run.stdout.strip() == "False", run.stderr[-2000:]


def app_check_reason(client, log_lines, app_token: str | None) -> tuple[int, str]:
    log_lines()
    response = create(client, app_token)
    (line,) = [line for line in log_lines() if line.get("endpoint") == "create_embedded_session"]
    return response.status_code, line.get("app_check")


def test_an_invalid_token_is_told_to_get_a_fresh_one(client, app_check, keys):
    response = create(client, token(keys["key-1"], sub=""))

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid App Check token; get a fresh one and retry."}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda keys: None, "missing"),
        (lambda keys: "x" * (appcheck.MAX_TOKEN_CHARS + 1), "too_long"),
        (lambda keys: "x" * appcheck.MAX_TOKEN_CHARS, "malformed"),
        (
            lambda keys: jwt.encode(claims(), keys["key-1"].private, algorithm="RS256", headers={"typ": "JOSE"}),
            "header",
        ),
        (lambda keys: jwt.encode(claims(), keys["key-1"].private, algorithm="RS256"), "header"),
        (lambda keys: token(keys["key-1"], sub=""), "subject"),
        (lambda keys: token(keys["key-1"], aud=["projects/1"]), "InvalidAudienceError"),
    ],
    ids=[
        "missing",
        "one char too long",
        "longest, but not a JWT",
        "not typed JWT",
        "no kid",
        "empty subject",
        "audience",
    ],
)
def test_the_log_line_names_why_a_token_was_refused(client, app_check, keys, log_lines, make, reason):
    assert app_check_reason(client, log_lines, make(keys)) == (401, reason)


def test_a_kid_not_among_the_cached_keys_is_an_unknown_key(client, app_check, keys, log_lines):
    assert create(client, token(keys["key-1"])).status_code == 200
    forged = jwt.encode(claims(), keys["key-1"].private, algorithm="RS256", headers={"kid": "forged"})

    assert app_check_reason(client, log_lines, forged) == (401, "unknown_key")


def test_keys_that_cannot_be_fetched_are_named_on_the_log_line(client, app_check, keys, log_lines):
    app_check.down = True

    assert app_check_reason(client, log_lines, token(keys["key-1"])) == (503, "keys_unavailable")


class PublishedFor:
    """A key as App Check's JWKS would list it for another use."""

    def __init__(self, key: SigningKey, use: str):
        self.key, self.use = key, use

    def jwk(self) -> dict:
        return {**self.key.jwk(), "use": self.use}


def test_a_key_published_for_encryption_is_not_used_to_verify_even_when_cached(client, app_check, keys):
    app_check.published = [PublishedFor(keys["key-1"], "enc"), keys["key-2"]]
    assert create(client, token(keys["key-2"])).status_code == 200  # the key set is cached now

    assert create(client, token(keys["key-1"])).status_code == 401


@pytest.mark.parametrize(
    "changes",
    [{"iat": FromNow(appcheck.LEEWAY_SECONDS - 10)}, {"exp": FromNow(-appcheck.LEEWAY_SECONDS + 10)}],
    ids=["issued a little ahead of our clock", "expired a moment ago by our clock"],
)
def test_a_token_within_the_clock_leeway_is_accepted(client, app_check, keys, changes):
    assert create(client, token(keys["key-1"], **changes)).status_code == 200


def test_a_key_set_with_no_signing_key_is_a_503_not_a_bad_token(client, app_check, keys):
    app_check.published = []

    assert create(client, token(keys["key-1"])).status_code == 503


def test_a_slow_jwks_that_answers_within_the_fetch_timeout_is_waited_for(client, app_check, keys, monkeypatch):
    monkeypatch.setattr(appcheck, "FETCH_TIMEOUT_SECONDS", 0.8)
    app_check.delay = 0.4

    assert create(client, token(keys["key-1"])).status_code == 200


def test_a_new_kid_while_the_jwks_is_unreachable_is_a_503_not_a_bad_token(client, app_check, keys, monkeypatch):
    monkeypatch.setattr(appcheck, "REFRESH_COOLDOWN_SECONDS", 0.0)
    assert create(client, token(keys["key-1"])).status_code == 200
    app_check.stop()  # nothing listens any more: the refresh for key-2 cannot connect

    assert create(client, token(keys["key-2"])).status_code == 503


@pytest.mark.parametrize(
    "body",
    [b"<html>Service maintenance</html>", b"[]"],
    ids=["not JSON", "JSON but not a key set"],
)
def test_a_jwks_answer_that_is_not_a_key_set_is_a_503_to_retry(client, app_check, keys, log_lines, body):
    app_check.body = body
    log_lines()

    response = create(client, token(keys["key-1"]))

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) == appcheck.RETRY_FETCH_AFTER_SECONDS
    (line,) = [line for line in log_lines() if line.get("endpoint") == "create_embedded_session"]
    assert line["app_check"] == "keys_unavailable"


def test_after_an_unreadable_key_set_requests_are_refused_at_once_without_another_fetch(client, app_check, keys):
    app_check.body = b"<html>Service maintenance</html>"
    assert create(client, token(keys["key-1"])).status_code == 503

    response = create(client, token(keys["key-1"]))

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) == appcheck.RETRY_FETCH_AFTER_SECONDS
    assert app_check.fetches == 1


def request_with(app_token: str) -> Request:
    return Request({"type": "http", "headers": [(appcheck.HEADER.lower().encode(), app_token.encode())]})


def test_a_token_whose_key_is_cached_is_verified_while_another_kid_is_being_fetched(jwks, keys, monkeypatch):
    """A slow refresh for a new (or forged) kid must not hold up tokens signed by a key already at hand."""
    monkeypatch.setattr(appcheck, "REFRESH_COOLDOWN_SECONDS", 0.0)

    async def scenario() -> float:
        checker = appcheck.AppCheck(PROJECT_NUMBER, jwks.url)
        assert await checker.verify(request_with(token(keys["key-1"]))) == APP_ID  # key-1 is cached now
        jwks.published = [keys["key-1"], keys["key-2"]]
        jwks.delay = 1.0
        refresh = asyncio.create_task(checker.verify(request_with(token(keys["key-2"]))))
        await asyncio.sleep(0.2)  # the refresh for key-2 is waiting on the JWKS

        started = time.monotonic()
        assert await checker.verify(request_with(token(keys["key-1"]))) == APP_ID
        waited = time.monotonic() - started

        assert await refresh == APP_ID
        return waited

    assert asyncio.run(scenario()) < 0.5
