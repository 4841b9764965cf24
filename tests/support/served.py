"""The app as Cloud Run runs it: a `functions-framework --target=api` process on 127.0.0.1.

``served_api`` (per test) starts such processes with the environment a test
gives; each is stopped when the test ends, or earlier with `stop()` to play
an instance going away.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.redis import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 20.0


class ServedApi:
    def __init__(self, env: dict):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        executable = Path(sys.executable).with_name("functions-framework")
        self.process = subprocess.Popen(
            [str(executable), "--target=api", "--source=main.py", f"--port={self.port}", "--host=127.0.0.1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()
        self._wait_until_ready()

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                requests.get(self.base + "/", timeout=1)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("functions-framework did not start:\n" + "".join(self.output))
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
