"""The app as Cloud Run runs it: a `functions-framework --target=api` process on 127.0.0.1.

Tests that need the real server (gunicorn's master, its UvicornWorker,
uvicorn's HTTP parser) rather than the in-process test client start one:
`with serving(env) as served:` for one block, or the `served_api` fixture
(`served_api(env)`) for several instances in one test, each stopped when the
test ends or earlier with `stop()` to play an instance going away.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import pytest

from devtools.run_local import free_port, start_process, stop_process, wait_until_listening
from tests.conftest import TEST_KEY, WEBHOOK_SECRET, local_env

START_TIMEOUT_SECONDS = 30


class ServedApi:
    """One running process; `base_url` is where it listens."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        executable = Path(sys.executable).with_name("functions-framework")
        command = [str(executable), "--target=api", "--source=main.py", f"--port={self.port}", "--host=127.0.0.1"]
        self.process = start_process(command, env, "API")
        self.master_pid = self.process.pid
        try:
            wait_until_listening("127.0.0.1", self.port, self.process, "API", START_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise

    @property
    def base(self) -> str:
        return self.base_url

    def worker_pid(self) -> int:
        """The one gunicorn worker that serves requests (WORKERS is unset: one)."""
        deadline = time.monotonic() + 10
        while True:
            children = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children").read_text().split()
            if len(children) == 1 or time.monotonic() > deadline:
                assert len(children) == 1, children
                return int(children[0])
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.process)


def stack_env(standin, store_path: Path, **extra) -> dict:
    """The environment of a process serving against the Stripe stand-in and an SQLite store."""
    return local_env(
        STRIPE_SECRET_KEY=TEST_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        FRONTEND_URL="http://localhost:5173",
        STRIPE_API_BASE=standin.base_url,
        PAYMENTS_STORE=f"sqlite:///{store_path}",
        **extra,
    )


@contextlib.contextmanager
def serving(env: dict):
    served = ServedApi(env)
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def served_api():
    """Start `functions-framework --target=api` processes: `served_api(env)` → a running ServedApi."""
    started: list[ServedApi] = []

    def start(env: dict) -> ServedApi:
        served = ServedApi(env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
