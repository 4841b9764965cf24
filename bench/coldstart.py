"""Cold start: from spawning the server to its first successful answer.

The clock starts just before the process is spawned and stops when the first
request is answered 200. The request is sent as soon as the port accepts a
connection, which is what Cloud Run does with the request that caused the
instance to start. Runs are interleaved (A, B, C, A, B, C, …) so drift in
the machine's load affects every case alike, and the median is reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from bench import procs
from bench.services import Context, Service, first_request


@dataclass
class Case:
    label: str
    kind: str  # create, status or webhook: which first request
    service: Service
    yardstick: str | None = None  # label of the case this one is compared with
    cold: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)  # connect → answer, for the first request
    warm: list[float] = field(default_factory=list)  # the same request again, on the warm process

    @property
    def median(self) -> float:
        return statistics.median(self.cold)


def measure_once(case: Case, ctx: Context, timeout: float = 30.0) -> None:
    process = case.service.start(ctx, label=f"cold-{case.label}")
    try:
        deadline = process.started + timeout
        while True:
            method, path, body, headers = first_request(case.kind, case.service, ctx)
            sent = time.perf_counter()
            try:
                status, answer = procs.request(process.url + path, method, body, headers)
                break
            except OSError:
                if not process.alive() or time.perf_counter() > deadline:
                    raise RuntimeError(f"{case.label} never answered:\n{process.tail()}") from None
                time.sleep(0.002)
        done = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"{case.label} answered {status}: {answer[:300]!r}\n{process.tail()}")
        case.cold.append(done - process.started)
        case.first.append(done - sent)

        method, path, body, headers = first_request(case.kind, case.service, ctx)
        again = time.perf_counter()
        status, answer = procs.request(process.url + path, method, body, headers)
        case.warm.append(time.perf_counter() - again)
    finally:
        process.stop()


def run(cases: list[Case], ctx: Context, runs: int, log=print, warm_up: bool = True) -> None:
    """One discarded warm-up round (bytecode caches, page cache), then `runs` interleaved rounds."""
    for round_number in range(0 if warm_up else 1, runs + 1):
        for case in cases:
            before = len(case.cold)
            measure_once(case, ctx)
            if round_number == 0:  # warm-up
                del case.cold[before:], case.first[before:], case.warm[before:]
        if round_number:
            log(
                f"  cold start round {round_number}/{runs}: " + ", ".join(f"{c.label} {c.cold[-1]:.3f}s" for c in cases)
            )
