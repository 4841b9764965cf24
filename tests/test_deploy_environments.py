"""Each deploy serves real requests with exactly the environment it is given.

Each deploy's environment is what the build gives it: its env-vars file
from deploy/env/, filled in by deploy/render.py exactly as the build's test
step does, plus its secrets (test values in place of the real ones). Its
entry point then serves real requests through functions-framework with
nothing else in the environment: a setting the code needs but the deploy
lacks makes it fail, and every secret and setting a deploy is given must
change what it serves when taken away (the few no request can show are
instead checked to go exactly where they are used), so none is handed out
that the code does not use.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import stripe

from checkout.create import session_params
from deploy import render
from tests.conftest import TEST_KEY, WEBHOOK_SECRET, instance, signed_headers
from tests.support.cloudbuild import (
    REQUIRED,
    Deploy,
    build_test_step,
    deploy_by_id,
    deploy_ids,
    step_env,
    substitution_values,
)

FRONTEND_ORIGIN = "https://shop.example.com"
OTHER_ORIGIN = "https://admin.shop.example.com"
# Choices an operator might pass with --substitutions, picked so that each
# setting they feed is visible in a response: a second allowed origin, a
# return path, rates of one request a minute, and two trusted proxy hops
# (behind a load balancer).
OPERATOR = {
    **REQUIRED,
    "_ALLOWED_ORIGINS": f"{FRONTEND_ORIGIN},{OTHER_ORIGIN}",
    "_CHECKOUT_RETURN_PATH": "/thanks",
    "_RATE_LIMIT_CREATE": "1/minute",
    "_RATE_LIMIT_STATUS": "1/minute",
    "_TRUSTED_PROXY_HOPS": "2",
}
SCENARIOS = {"defaults": REQUIRED, "operator": OPERATOR}

# Secret Manager values, replaced by values shaped like the real ones.
SECRET_TEST_VALUES = {"STRIPE_SECRET_KEY": TEST_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}

# Settings whose removal no request here can show, and what covers them instead.
NOT_OBSERVABLE = {
    "RATE_LIMIT_STORAGE_URI": "memory:// here (firestore:// would need a real project); given where limits apply",
    "RATE_LIMIT_FAIL_OPEN_CREATE": "matters only while shared counts are unreachable (test_shared_rate_limits.py)",
    "APP_CHECK_PROJECT_NUMBER": "empty by default (App Check off); tests/test_appcheck.py covers it on",
    "APP_CHECK_ON_STATUS": "matters only with App Check on",
    "GOOGLE_CLOUD_PROJECT": "names the project in trace links only (tests/test_logs.py)",
    "PAYMENTS_STORE": "pointed at a temporary SQLite file here; given, as firestore, where the store is used",
    "PAYMENTS_COLLECTION": "read only by the Firestore store; given where the store is used",
    "EVENTS_COLLECTION": "read only by the Firestore store; given where the store is used",
    "PAYMENT_INTENTS_COLLECTION": "read only by the Firestore store; given where the store is used",
}
STORE_SETTINGS = {"PAYMENTS_STORE", "PAYMENTS_COLLECTION", "EVENTS_COLLECTION", "PAYMENT_INTENTS_COLLECTION"}

# Three callers behind one load balancer (203.0.113.9): client A, client B, client A again.
CALLERS = (
    ("198.51.100.1, 203.0.113.9", FRONTEND_ORIGIN),
    ("198.51.100.2, 203.0.113.9", FRONTEND_ORIGIN),
    ("198.51.100.1, 203.0.113.9", OTHER_ORIGIN),
)


def deployed_environment(deploy: Deploy, overrides: dict) -> dict:
    """What the deployed code sees: its rendered env-vars file plus its secrets (test values)."""
    values = substitution_values(overrides)
    env = render.fill(deploy.env_file(), step_env(build_test_step(), values))
    for name in deploy.secrets(values):
        env[name] = SECRET_TEST_VALUES[name]
    return env


@contextlib.contextmanager
def only_environment(env: dict):
    """Run with `env` as the whole process environment, as a fresh instance would have it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def summary(response) -> tuple:
    """What a caller sees: status, CORS grant and body (the per-session client_secret masked)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if "client_secret" in body:
        body = {**body, "client_secret": "<client secret>"}
    return response.status_code, response.headers.get("Access-Control-Allow-Origin"), body


def completed_session(standin) -> tuple[str, dict]:
    """A paid Checkout Session on the stand-in and the event Stripe sends for it."""
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": standin.base_url})
    params = session_params(FRONTEND_ORIGIN + "/return?session_id={CHECKOUT_SESSION_ID}")
    session = client.v1.checkout.sessions.create(params=params)
    [event] = standin.complete(session.id)
    return session.id, event


def probe_create(client, path: str, standin) -> list:
    seen = [
        summary(client.post(path, json={}, headers={"Origin": origin, "X-Forwarded-For": forwarded}))
        for forwarded, origin in CALLERS
    ]
    seen.append(sorted(session["return_url"] for session in standin.sessions))
    return seen


def probe_status(client, path: str, standin) -> list:
    session_id, _ = completed_session(standin)
    return [
        summary(
            client.get(
                path, params={"session_id": session_id}, headers={"Origin": origin, "X-Forwarded-For": forwarded}
            )
        )
        for forwarded, origin in CALLERS
    ]


def probe_webhook(client, path: str, standin) -> list:
    _, event = completed_session(standin)
    payload = json.dumps(event)
    # Stripe delivers at least once: the second delivery is recognised as a repeat.
    return [summary(client.post(path, content=payload, headers=signed_headers(payload))) for _ in range(2)]


PROBES = {"create_embedded_session": probe_create, "session_status": probe_status, "stripe_webhook": probe_webhook}


def served_ok(entry_point: str, seen: list) -> bool:
    """The first request was served as it would be in production."""
    status, _, body = seen[0]
    if entry_point == "create_embedded_session":
        return status == 200 and "client_secret" in body
    if entry_point == "session_status":
        return status == 200 and body == {"status": "complete", "payment_status": "paid", "outcome": "paid"}
    return status == 200 and body == {"received": True, "duplicate": False} and seen[1][2]["duplicate"] is True


def endpoints(deploy: Deploy) -> list[tuple[str, str]]:
    """(entry point, path) for each endpoint the deploy serves: one function, or every route of `api`."""
    if deploy.entry_point != "api":
        return [(deploy.entry_point, "/")]
    import main

    paths = {handler.__name__: path for path, handler in main.ROUTES.items()}
    return [(name, paths[name]) for name in PROBES]


@dataclass
class Served:
    seen: list
    store_opened: bool
    rate_limited: bool


def serve(deploy: Deploy, environment: dict, standin, database: Path) -> Served:
    """Start the deploy's entry point with only `environment` and probe every endpoint it serves.

    Test-only additions: the Stripe stand-in instead of api.stripe.com, and a
    temporary SQLite file and in-memory rate limits instead of Firestore
    (never a real project's).
    """
    env = {**environment, "STRIPE_API_BASE": standin.base_url, "PAYMENTS_STORE": f"sqlite:///{database}"}
    if env.get("RATE_LIMIT_STORAGE_URI", "").startswith("firestore://"):
        env["RATE_LIMIT_STORAGE_URI"] = "memory://"
    with only_environment(env):
        standin.reset()
        client, module = instance(deploy.entry_point)
        with client:
            try:
                seen = [(name, PROBES[name](client, path, standin)) for name, path in endpoints(deploy)]
                context = module.context
                return Served(seen, context._store is not None, context._limiter is not None)
            finally:
                client.portal.call(module.context.close)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("step_id", deploy_ids())
def test_each_deploy_serves_real_requests_with_only_its_configured_environment(step_id, scenario, standin, tmp_path):
    deploy = deploy_by_id(step_id)
    environment = deployed_environment(deploy, SCENARIOS[scenario])
    served = serve(deploy, environment, standin, tmp_path / "payments.db")
    for entry_point, seen in served.seen:
        assert served_ok(entry_point, seen), f"{entry_point}: {seen}"


@pytest.mark.parametrize("step_id", deploy_ids())
def test_every_setting_and_secret_a_deploy_is_given_changes_what_it_serves(step_id, standin, tmp_path):
    deploy = deploy_by_id(step_id)
    environments = {name: deployed_environment(deploy, o) for name, o in SCENARIOS.items()}
    baselines = {name: serve(deploy, env, standin, tmp_path / f"{name}.db").seen for name, env in environments.items()}
    given = set().union(*environments.values())
    without_effect = []
    for setting in sorted(given - set(NOT_OBSERVABLE)):
        changed = False
        for name, env in environments.items():
            reduced = {key: value for key, value in env.items() if key != setting}
            seen = serve(deploy, reduced, standin, tmp_path / f"{name}-{setting}.db").seen
            changed = changed or seen != baselines[name]
        if not changed:
            without_effect.append(setting)
    assert without_effect == [], f"{deploy.id} is given settings it does not use: {without_effect}"


@pytest.mark.parametrize("step_id", deploy_ids())
def test_store_settings_are_given_exactly_where_the_store_is_used(step_id, standin, tmp_path):
    deploy = deploy_by_id(step_id)
    environment = deployed_environment(deploy, REQUIRED)
    served = serve(deploy, environment, standin, tmp_path / "payments.db")
    if served.store_opened:
        assert set(environment) >= STORE_SETTINGS
        assert environment["PAYMENTS_STORE"] == "firestore"
    else:
        assert not STORE_SETTINGS & set(environment)


@pytest.mark.parametrize("step_id", deploy_ids())
def test_rate_limit_storage_is_given_exactly_where_requests_are_rate_limited(step_id, standin, tmp_path):
    deploy = deploy_by_id(step_id)
    environment = deployed_environment(deploy, REQUIRED)
    served = serve(deploy, environment, standin, tmp_path / "payments.db")
    assert ("RATE_LIMIT_STORAGE_URI" in environment) == served.rate_limited
