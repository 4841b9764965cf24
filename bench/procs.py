"""The processes a benchmark run starts, and how it talks to them.

Each server gets a free port, its own environment and a log file in the
run's scratch folder. It runs in a session of its own, so stopping it stops
its children too (gunicorn's workers, npm's node) and nothing else.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def split_cores(server_cores: int) -> tuple[set[int] | None, set[int] | None]:
    """(cores for the servers under test, cores for everything else), or (None, None) to share all.

    An instance with --cpu=1 has one core: its threads never wait for one
    another on a second core. Pinning the server under test to its own
    core(s) reproduces that, and keeps the stand-in, the emulator and wrk
    from taking its CPU time (and it from taking theirs).
    """
    cores = sorted(os.sched_getaffinity(0))
    if server_cores <= 0 or len(cores) <= server_cores:
        return None, None
    return set(cores[-server_cores:]), set(cores[:-server_cores])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def functions_framework(target: str, source: Path, port: int, python: Path | None = None) -> list[str]:
    """The command Cloud Run functions runs, from `python`'s virtual environment (default: this one)."""
    script = Path(python or sys.executable).with_name("functions-framework")
    command = [str(script)] if script.exists() else [str(python or sys.executable), "-m", "functions_framework"]
    return [*command, f"--target={target}", f"--source={source}", "--host=127.0.0.1", f"--port={port}"]


class Process:
    """One started server; `stop()` ends it and everything it started."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict | None,
        cwd: Path,
        log_dir: Path,
        port: int,
        cpus: set[int] | None = None,
    ):
        self.name = name
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the server writes to it until stop() closes it
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if cpus:
            # Set before the interpreter has started any thread or child; they all inherit it.
            os.sched_setaffinity(self.process.pid, cpus)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGINT first (gunicorn's quick shutdown), then SIGKILL the group if it lingers.

        Nothing a benchmark server holds needs a graceful exit, and a worker
        with gRPC threads (the Firestore client) can take seconds to leave.
        """
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self._log.close()

    def tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def cpu_seconds(self) -> float:
        """User plus system CPU time used so far by the server's whole process tree."""
        return sum(_cpu_seconds(pid) for pid in _tree(self.process.pid))

    def peak_rss_mib(self) -> tuple[float, float]:
        """(largest single process, sum over the tree) of peak RSS (VmHWM), in MiB.

        For functions-framework the largest is the gunicorn worker that
        served the load; the sum adds the master (and any other workers),
        counting pages they share twice, so it is an upper bound.
        """
        peaks = [_vm_hwm_kib(pid) for pid in _tree(self.process.pid)]
        peaks = [kib for kib in peaks if kib]
        if not peaks:
            return 0.0, 0.0
        return max(peaks) / 1024, sum(peaks) / 1024


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            pids.extend(_tree(int(child)))
    return pids


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """One HTTP request; (status, body). Raises OSError while nothing listens."""
    parts = url.split("/", 3)
    host, path = parts[2], "/" + (parts[3] if len(parts) > 3 else "")
    connection = http.client.HTTPConnection(host, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_json(url: str, payload: dict) -> dict:
    status, body = request(url, "POST", json.dumps(payload).encode(), {"Content-Type": "application/json"})
    if status != 200:
        raise RuntimeError(f"POST {url} answered {status}: {body[:200]!r}")
    return json.loads(body)


def wait_until_listening(process: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited early:\n{process.tail()}")
        try:
            socket.create_connection(("127.0.0.1", process.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{process.name} did not listen within {timeout:g} s:\n{process.tail()}")
