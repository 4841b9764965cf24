"""A local Firestore emulator, for the tests and for `make run --firestore`.

Google's emulator downloads a jar when it starts, so this project runs the
open-source ``@firestore-emulator/server`` npm package instead (installed by
``npm ci`` at the repository root) through ``firestore_emulator.mjs``. The
Python ``google-cloud-firestore`` client talks to it over gRPC as soon as
``FIRESTORE_EMULATOR_HOST`` names its address.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = Path(__file__).with_name("firestore_emulator.mjs")
READY_PREFIX = "firestore emulator listening on "


class EmulatorError(RuntimeError):
    """The emulator could not be started; the message carries its output."""


class EmulatorProcess:
    """A running emulator. Keeps its stdin open: closing it stops the emulator."""

    def __init__(self, process: subprocess.Popen, host_port: str, output: list[str]):
        self.process = process
        self.host_port = host_port
        self._output = output

    @property
    def output(self) -> str:
        """Everything the emulator printed so far (it logs unsupported calls)."""
        return "".join(self._output)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the emulator and wait for it; safe to call twice."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.terminate()
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _pump(stream, output: list[str], lines: queue.Queue) -> None:
    """Drain the emulator's output so it never blocks on a full pipe."""
    for line in stream:
        output.append(line)
        lines.put(line)
    lines.put(None)  # end of output: the process has exited


def start_firestore_emulator(
    host: str = "127.0.0.1", port: int = 0, timeout: float = 15.0
) -> EmulatorProcess:
    """Start the emulator and return once it accepts connections.

    ``port=0`` lets the emulator pick a free port and report it back, which
    avoids races with other processes grabbing a port we chose.
    """
    node = shutil.which("node")
    if node is None:
        raise EmulatorError("node is not on PATH: the Firestore emulator needs Node.js")
    if not (REPO_ROOT / "node_modules" / "@firestore-emulator" / "server").is_dir():
        raise EmulatorError(
            f"@firestore-emulator/server is not installed: run `npm ci` in {REPO_ROOT}"
        )

    process = subprocess.Popen(
        [node, str(LAUNCHER), "--host", host, "--port", str(port)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=_pump, args=(process.stdout, output, lines), daemon=True
    ).start()

    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
            problem = f"did not start within {timeout:g} s"
        else:
            problem = "exited before it was ready"
        if line is not None and line.startswith(READY_PREFIX):
            return EmulatorProcess(process, line[len(READY_PREFIX):].strip(), output)
        if line is None:
            emulator = EmulatorProcess(process, "", output)
            emulator.stop()
            raise EmulatorError(
                f"Firestore emulator {problem} (exit code {process.returncode}). "
                f"Output:\n{emulator.output or '(none)'}"
            )
