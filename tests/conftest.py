"""Fixtures the whole suite shares.

Tests talk to real things: the real `stripe` SDK over HTTP to a local Stripe
stand-in, the real functions-framework app, real stores. What they share is
set up here: the stand-in, a clean instance (settings, clients and limits
forgotten between tests), and test clients for each entry point.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from functions_framework import create_app

from common import ratelimit, secrets, settings, stripe_api
from devtools.stripe_standin import StripeStandin
from payments import store

# Fixtures every module may use: the Firestore emulator (one per session) and
# a local Secret Manager.
pytest_plugins = ["tests.support.firestore", "tests.support.secret_manager"]

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "main.py")

TEST_KEY = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_" + "testsecretforthesuite0123456789"
FRONTEND_URL = "http://localhost:5173"

# Every setting the code reads; each test starts with none but those it sets.
SETTING_NAMES = settings.NAMES


def local_env(**extra) -> dict:
    """The process environment for a child process: no payment setting a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and k != "STRIPE_PUBLISHABLE_KEY"}
    env.update(extra)
    return env


def reset_instance() -> None:
    """Forget what an instance keeps between requests, as a fresh cold start would."""
    settings.get.cache_clear()
    stripe_api.reset_client()
    secrets.clear_cache()
    store.reset_store()
    ratelimit._limiter.cache_clear()
    ratelimit._items.cache_clear()


@pytest.fixture(scope="session")
def stripe_server():
    server = StripeStandin()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The whole local stack `make run` starts, on free ports: API, stand-in, page, SQLite."""
    from devtools.run_local import LocalStack, Options

    env = local_env(RATE_LIMIT_CREATE="1000/minute", RATE_LIMIT_STATUS="1000/minute")
    stack = LocalStack(Options(api_port=0, page_port=0, stripe_port=0, env=env,
                               state_dir=tmp_path_factory.mktemp("state")))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def standin(stripe_server):
    """The Stripe stand-in, emptied before each test."""
    stripe_server.reset()
    return stripe_server


@pytest.fixture
def env(monkeypatch, standin, tmp_path):
    """A complete local configuration; tests change it with monkeypatch before the first request."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    values = {
        "STRIPE_SECRET_KEY": TEST_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "FRONTEND_URL": FRONTEND_URL,
        "STRIPE_API_BASE": standin.base_url,
        "RATE_LIMIT_CREATE": "1000/minute",
        "RATE_LIMIT_STATUS": "1000/minute",
        "PAYMENTS_STORE": f"sqlite:///{tmp_path / 'payments.db'}",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    reset_instance()
    yield values
    reset_instance()


@pytest.fixture(scope="session")
def apps():
    """One functions-framework app per entry point, built as the deploy builds them."""
    built = {}

    def app(target: str):
        if target not in built:
            built[target] = create_app(target, MAIN)
        return built[target]

    return app


@pytest.fixture
def client(env, apps):
    """The `api` entry point: every path behind one URL."""
    return apps("api").test_client()


@pytest.fixture
def function_client(env, apps):
    """A test client for one deployed entry point, by its name in main.py."""
    return lambda target: apps(target).test_client()


@pytest.fixture
def session_id(client, standin):
    """An open Checkout Session, created through our own create endpoint."""
    response = client.post(
        "/api/checkout/embedded-session", json={"customer_email": "buyer@example.com", "metadata": {"board": "feelings"}}
    )
    assert response.status_code == 200
    return standin.sessions[-1]["id"]


@pytest.fixture
def log_lines(capsys):
    """The structured log lines written so far (stdout and stderr), parsed."""

    def read() -> list[dict]:
        captured = capsys.readouterr()
        lines = []
        for line in (captured.out + captured.err).splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"raw": line})
        return lines

    return read


def signed_headers(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict:
    """Headers Stripe would send with `payload`, signed with Stripe's own scheme."""
    import stripe

    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


@pytest.fixture
def deliver(client):
    """POST an event to /webhook the way Stripe does; returns the response."""

    def send(event: dict, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
        payload = json.dumps(event)
        return client.post("/webhook", data=payload, headers=signed_headers(payload, secret, timestamp))

    return send


class StoredPayments:
    """What the app under test has stored, read back as an operator would."""

    def __init__(self, kind: str):
        self.kind = kind

    def record(self, session_id: str) -> dict | None:
        store_ = store.get_store(settings.get())
        assert store_.description.startswith("Firestore" if self.kind == "firestore" else "SQLite")
        return store_.get_payment(session_id)

    def event_ids(self) -> list[str]:
        """Ids of the events stored, in no particular order."""
        if self.kind == "firestore":
            from google.cloud import firestore

            client = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
            try:
                return [doc.id for doc in client.collection("stripe_events").stream()]
            finally:
                client.close()
        path = os.environ["PAYMENTS_STORE"][len("sqlite:///"):]
        if not os.path.exists(path):
            return []
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "stripe_events" not in tables:
                return []
            return [row[0] for row in db.execute("SELECT event_id FROM stripe_events")]


@pytest.fixture(params=["sqlite", "firestore"])
def payments(request, env, monkeypatch):
    """The store the app writes to: an SQLite file, or a fresh Firestore emulator project."""
    if request.param == "firestore":
        project = request.getfixturevalue("firestore_project")
        monkeypatch.setenv("PAYMENTS_STORE", "firestore")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
        reset_instance()  # settings are read once per instance: start a fresh one
    return StoredPayments(request.param)


@pytest.fixture
def sqlite_payments(env):
    """The SQLite store alone, for refusals: they are turned away before any store is opened."""
    return StoredPayments("sqlite")
