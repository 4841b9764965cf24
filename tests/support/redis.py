"""A real Redis server for the tests: Debian's `redis-server`, on 127.0.0.1 and a free port.

``redis_server`` (per test) yields a running `RedisServer`; a test may stop
and start it again on the same port to play an outage or a restart. Nothing
is written to disk. Without `redis-server` the tests skip, saying how to
install it; under CI=true they fail.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest

from tests.support.ci import missing

READY_LINE = "Ready to accept connections"
START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, executable: str, port: int):
        self.executable = executable
        self.port = port
        self.url = f"redis://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        self.process = subprocess.Popen(
            [
                self.executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                "--loglevel",
                "notice",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        output = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:  # exited
                break
            output.append(line)
            if READY_LINE in line:
                # The server logs on; drain it so it never blocks on a full pipe.
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return
        self.stop()
        raise RuntimeError("redis-server did not start:\n" + "".join(output))

    def stop(self) -> None:
        """Stop the server and wait for it; safe to call twice."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def redis_server():
    """A fresh, empty Redis server for one test, stopped after it."""
    executable = shutil.which("redis-server")
    if executable is None:
        missing("redis-server is not installed: apt-get install redis-server")
    server = RedisServer(executable, free_port())
    server.start()  # the port was free a moment ago; if another process took it since, the start says so
    try:
        yield server
    finally:
        server.stop()
