"""The app as a developer runs it: `functions-framework --target=api`, over real HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_KEY, WEBHOOK_SECRET, local_env

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(standin, tmp_path):
    """A functions-framework process serving `api` against the Stripe stand-in."""
    port = free_port()
    env = local_env(
        STRIPE_SECRET_KEY=TEST_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        FRONTEND_URL="http://localhost:5173",
        STRIPE_API_BASE=standin.base_url,
        PAYMENTS_STORE=f"sqlite:///{tmp_path / 'payments.db'}",
    )
    executable = Path(sys.executable).with_name("functions-framework")
    process = subprocess.Popen(
        [str(executable), "--target=api", "--source=main.py", f"--port={port}", "--host=127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("functions-framework did not start:\n" + process.stdout.read()) from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_create_then_status_over_http(served, standin):
    created = requests.post(served + "/api/checkout/embedded-session", json={}, timeout=10)
    session_id = standin.sessions[-1]["id"]
    standin.complete(session_id, payment_status="paid")
    status = requests.get(served + "/api/checkout/session-status", params={"session_id": session_id}, timeout=10)

    assert created.status_code == 200
    assert set(created.json()) == {"client_secret"}
    assert status.json() == {"status": "complete", "payment_status": "paid", "outcome": "paid"}


def test_preflight_over_http(served):
    response = requests.options(
        served + "/api/checkout/embedded-session",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
