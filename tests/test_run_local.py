"""`python -m devtools.run_local` as a developer runs it: a real process, killed with SIGTERM.

run_local's output (and its children's, which inherit it) is read through
one pipe. When every process that holds the pipe has exited, the reader
sees end-of-file, so "the output ended" doubles as "no child outlived it".
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from devtools.run_local import free_port
from tests.conftest import local_env

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 30


class RunLocal:
    """run_local in its own process group, with its output collected line by line."""

    def __init__(self, args: list[str], env: dict):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.run_local", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self.ended = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self.ended.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT_SECONDS) -> re.Match:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if match := re.search(pattern, line):
                return match
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.ended.is_set():
                    break
                continue
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"run_local never printed {pattern!r}. Output:\n{self.output}")

    def stop(self) -> None:
        """Cleanup after a failed test: SIGTERM lets run_local stop its children; SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def run_local(tmp_path):
    started = []

    def start(*args: str, env: dict | None = None) -> RunLocal:
        runner = RunLocal([*args, "--state-dir", str(tmp_path / "state")], env or local_env())
        started.append(runner)
        return runner

    try:
        yield start
    finally:
        for runner in started:
            runner.stop()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (Linux /proc; [] elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found


def test_refuses_a_taken_port_before_starting_anything(run_local):
    api_port, page_port, stripe_port = free_port(), free_port(), free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", page_port))
        holder.listen()

        runner = run_local(
            "--api-port", str(api_port), "--page-port", str(page_port), "--stripe-port", str(stripe_port)
        )
        code = runner.process.wait(timeout=20)

    assert code != 0
    assert f"Port {page_port} for the example page is already in use" in runner.output
    assert "--page-port" in runner.output
    assert not listening(api_port) and not listening(stripe_port)


def test_refuses_a_live_key(run_local):
    runner = run_local(
        "--api-port",
        str(free_port()),
        "--page-port",
        str(free_port()),
        env=local_env(STRIPE_SECRET_KEY="sk_live_" + "x" * 24),
    )

    assert runner.process.wait(timeout=20) != 0
    assert "live key" in runner.output


def test_starts_serves_and_stops_its_children_on_sigterm(run_local, tmp_path):
    api_port, page_port, stripe_port = free_port(), free_port(), free_port()
    runner = run_local(
        "--api-port",
        str(api_port),
        "--page-port",
        str(page_port),
        "--stripe-port",
        str(stripe_port),
        env=local_env(RATE_LIMIT_CREATE="1000/minute"),
    )

    assert "SIMULATED" in runner.wait_for(r"SIMULATED").string
    api_url = runner.wait_for(r"^\s+API\s+(http://\S+)").group(1)
    page_url = runner.wait_for(r"^\s+Example page\s+(http://\S+)").group(1)
    runner.wait_for(r"Settings for simulate are in")
    page_origin = page_url.rstrip("/")

    created = requests.post(
        api_url + "/api/checkout/embedded-session",
        json={},
        headers={"Origin": page_origin, "Idempotency-Key": "run-local-test"},
        timeout=10,
    )
    page = requests.get(page_url, timeout=10)
    config_js = requests.get(page_origin + "/config.js", timeout=10)
    env_file = tmp_path / "state" / "dev.env"

    assert created.status_code == 200, created.text
    assert created.json()["client_secret"].startswith("cs_test_")
    assert created.headers["Access-Control-Allow-Origin"] == page_origin
    assert page.status_code == 200 and "pay-button" in page.text
    assert f'"apiBase": "{api_url}"' in config_js.text
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"STRIPE_API_BASE=http://127.0.0.1:{stripe_port}" in env_file.read_text()

    os.kill(runner.process.pid, signal.SIGTERM)

    assert runner.process.wait(timeout=15) == 0
    assert runner.ended.wait(timeout=5), "a child still holds run_local's output open"
    assert not any(listening(port) for port in (api_port, page_port, stripe_port))
    assert processes_mentioning(f"--port={api_port}") == []
    assert not env_file.exists()


def test_firestore_option_pays_into_googles_emulator_and_ctrl_c_stops_it(run_local, running_emulator, tmp_path):
    api_port, page_port, stripe_port = free_port(), free_port(), free_port()
    runner = run_local(
        "--firestore", "--api-port", str(api_port), "--page-port", str(page_port), "--stripe-port", str(stripe_port)
    )
    emulator = runner.wait_for(r"Payment store\s+Firestore emulator at (127\.0\.0\.1:(\d+))")
    api_url = runner.wait_for(r"^\s+API\s+(http://\S+)").group(1)
    runner.wait_for(r"Settings for simulate are in")
    created = requests.post(api_url + "/api/checkout/embedded-session", json={}, timeout=10)
    assert created.status_code == 200, created.text

    paid = subprocess.run(
        [sys.executable, "-m", "devtools.simulate", "pay", "latest", "--env-file", str(tmp_path / "state" / "dev.env")],
        cwd=ROOT,
        env=local_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert "webhook answered 200" in paid.stdout, paid.stdout + paid.stderr
    assert "recorded: outcome=paid status=complete payment_status=paid" in paid.stdout

    os.kill(runner.process.pid, signal.SIGINT)

    assert runner.process.wait(timeout=15) == 0
    assert runner.ended.wait(timeout=5), "a child still holds run_local's output open"
    assert not listening(int(emulator.group(2)))
    assert processes_mentioning(f"--port={emulator.group(2)}") == []  # the emulator's Java included
