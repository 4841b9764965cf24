"""Load with wrk: throughput and latency percentiles at a fixed number of connections.

wrk keeps every connection busy (a closed loop): each sends its next request
as soon as the last is answered, so requests/s at N connections is what one
instance sustains with N requests in flight. The Lua scripts in bench/wrk/
make the POSTs (JSON bodies, signed webhook events) and count answers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

WRK_SCRIPTS = Path(__file__).resolve().parent / "wrk"

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors
    counters: dict = field(default_factory=dict)  # what a Lua script's done() printed
    cpu_ms_per_request: float = float("nan")  # the server's CPU time over the run / requests completed


def available() -> bool:
    return shutil.which("wrk") is not None


def measured(server, url: str, connections: int, seconds: float, script: str, **options) -> Result:
    """`run` against `server` (a bench.procs.Process), with the CPU its process tree spent per request.

    The CPU counters tick at 100 Hz, so a run must serve a few hundred
    requests for the figure to mean much; every run here serves thousands.
    """
    before = server.cpu_seconds()
    result = run(url, connections, seconds, script, **options)
    spent = server.cpu_seconds() - before
    if result.requests:
        result.cpu_ms_per_request = spent * 1000 / result.requests
    return result


def run(
    url: str, connections: int, seconds: float, script: str, env: dict | None = None, threads: int | None = None
) -> Result:
    threads = threads or (1 if connections < 2 else 2)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPTS / script),
        url,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout.strip()}")
    return parse(completed.stdout)


def parse(output: str) -> Result:
    def latency(percentile: str) -> float:
        match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    counters = {key: int(value) for key, value in re.findall(r"^counter (\w+) (\d+)$", output, re.MULTILINE)}
    return Result(
        requests_per_second=float(rate.group(1)) if rate else 0.0,
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        requests=int(total.group(1)) if total else 0,
        errors=errors,
        counters=counters,
    )
