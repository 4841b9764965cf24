"""Fixtures the whole suite shares.

Tests talk to real things: the real `stripe` SDK over HTTP to a local Stripe
stand-in, the real functions-framework app, real stores. What they share is
set up here: the stand-in, and test clients for each entry point. Each test
gets a fresh instance: functions-framework loads main.py anew, whose context
reads the environment the test set up on its first request.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from functions_framework import create_app
from starlette.testclient import TestClient

from common import settings
from devtools.stripe_standin import StripeStandin

# Fixtures every module may use: the Firestore emulator (one per session), a
# local Secret Manager, a Redis server (one per test) and app processes.
pytest_plugins = [
    "tests.support.firestore",
    "tests.support.secret_manager",
    "tests.support.redis",
    "tests.support.served",
]

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


def instance(target: str = "api") -> tuple[TestClient, object]:
    """A new instance of one entry point, as functions-framework loads it: (client, its main module).

    Use it as a context manager's subject; close the context when done
    (`close_instance`).
    """
    app = create_app(target, MAIN)
    module = sys.modules["main"]  # the copy of main.py this app was loaded from
    if sys.path.count(str(ROOT)) > 1:  # functions-framework appends the source folder each time
        sys.path.remove(str(ROOT))
    return TestClient(app), module


@pytest.fixture
def new_client(env):
    """Start fresh instances of an entry point (a cold start); each is stopped after the test."""
    started = []

    def start(target: str = "api") -> TestClient:
        client, module = instance(target)
        client.__enter__()
        started.append((client, module))
        client.context = module.context
        return client

    yield start
    for client, module in reversed(started):
        client.portal.call(module.context.close)
        client.__exit__(None, None, None)


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
    stack = LocalStack(
        Options(api_port=0, page_port=0, stripe_port=0, env=env, state_dir=tmp_path_factory.mktemp("state"))
    )
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
    return values


@pytest.fixture
def client(new_client):
    """The `api` entry point (every path behind one URL), as a fresh instance."""
    return new_client("api")


@pytest.fixture
def function_client(new_client):
    """A test client for one deployed entry point, by its name in main.py."""
    return new_client


@pytest.fixture
def session_id(client, standin):
    """An open Checkout Session, created through our own create endpoint."""
    response = client.post(
        "/api/checkout/embedded-session",
        json={"customer_email": "buyer@example.com", "metadata": {"board": "feelings"}},
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
        return client.post("/webhook", content=payload, headers=signed_headers(payload, secret, timestamp))

    return send


class StoredPayments:
    """What the app under test has stored, read back as an operator would."""

    def __init__(self, kind: str, client: TestClient):
        self.kind = kind
        self.client = client

    def record(self, session_id: str) -> dict | None:
        store_ = self.client.context.store()
        assert store_.description.startswith("Firestore" if self.kind == "firestore" else "SQLite")
        return self.client.portal.call(store_.get_payment, session_id)

    def event_ids(self) -> list[str]:
        """Ids of the events stored, in no particular order."""
        if self.kind == "firestore":
            from google.cloud import firestore

            client = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
            try:
                return [doc.id for doc in client.collection("stripe_events").stream()]
            finally:
                client.close()
        path = os.environ["PAYMENTS_STORE"][len("sqlite:///") :]
        if not os.path.exists(path):
            return []
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "stripe_events" not in tables:
                return []
            return [row[0] for row in db.execute("SELECT event_id FROM stripe_events")]


@pytest.fixture(params=["sqlite", "firestore"])
def payments(request, env, monkeypatch, client):
    """The store the app writes to: an SQLite file, or a fresh Firestore emulator project."""
    if request.param == "firestore":
        project = request.getfixturevalue("firestore_project")
        monkeypatch.setenv("PAYMENTS_STORE", "firestore")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    return StoredPayments(request.param, client)


@pytest.fixture
def sqlite_payments(env, client):
    """The SQLite store alone, for refusals: they are turned away before any store is opened."""
    return StoredPayments("sqlite", client)
