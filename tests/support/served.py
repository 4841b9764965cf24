"""The app as Cloud Run runs it: a `functions-framework --target=api` process on 127.0.0.1.

Tests that need the real server (gunicorn's master, its UvicornWorker,
uvicorn's HTTP parser) rather than the in-process test client start one
with `served_api(env)`; it is stopped, workers included, when the block ends.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.run_local import free_port, start_process, stop_process, wait_until_listening
from tests.conftest import TEST_KEY, WEBHOOK_SECRET, local_env

START_TIMEOUT_SECONDS = 30


@dataclass
class ServedApi:
    base_url: str
    port: int
    master_pid: int

    def worker_pid(self) -> int:
        """The one gunicorn worker that serves requests (WORKERS is unset: one)."""
        deadline = time.monotonic() + 10
        while True:
            children = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children").read_text().split()
            if len(children) == 1 or time.monotonic() > deadline:
                assert len(children) == 1, children
                return int(children[0])
            time.sleep(0.05)


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
def served_api(env: dict):
    port = free_port()
    executable = Path(sys.executable).with_name("functions-framework")
    command = [str(executable), "--target=api", "--source=main.py", f"--port={port}", "--host=127.0.0.1"]
    process = start_process(command, env, "API")
    try:
        wait_until_listening("127.0.0.1", port, process, "API", START_TIMEOUT_SECONDS)
        yield ServedApi(f"http://127.0.0.1:{port}", port, process.pid)
    finally:
        stop_process(process)
