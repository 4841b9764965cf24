"""The benchmark's table: printed, and written to bench/results.md for README to quote."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from bench.coldstart import Case
from bench.load import Result


@dataclass
class LoadRow:
    """One endpoint, server and connection level, measured `len(results)` times."""

    endpoint: str
    server: str
    connections: int
    results: list[Result] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in self.results)

    def spread(self, attribute: str) -> tuple[float, float]:
        values = [getattr(r, attribute) for r in self.results]
        return min(values), max(values)

    @property
    def result(self) -> Result:
        return self.results[0]


@dataclass
class Results:
    machine: dict
    settings: dict
    notes: list[str] = field(default_factory=list)
    cold: list[Case] = field(default_factory=list)
    cold_handshake: list[Case] = field(default_factory=list)
    handshake_ms: float = 0.0
    load: list[LoadRow] = field(default_factory=list)
    load_latency_ms: float = 0.0
    settled: dict | None = None  # status of a settled session: result and Stripe calls made
    webhook: list[LoadRow] = field(default_factory=list)
    memory: list[tuple[str, float, float]] = field(default_factory=list)


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def markdown(results: Results) -> str:
    out = ["# Benchmark results", ""]
    out += [f"- {name}: {value}" for name, value in results.machine.items()]
    out += [f"- {name}: {value}" for name, value in results.settings.items()]
    out.append("")

    if results.cold:
        runs = len(results.cold[0].cold)
        out += [
            f"## Cold start: spawn `functions-framework --target=…` → first 200 (median of {runs} interleaved runs)",
            "",
        ]
        out += _cold_table(results.cold)
    if results.cold_handshake:
        out += [
            f"## Cold start of create when a new connection to Stripe takes {results.handshake_ms:.0f} ms "
            "(TCP + TLS handshake)",
            "",
        ]
        out += _cold_table(results.cold_handshake)

    if results.load:
        out += [
            f"## Throughput and latency with {results.load_latency_ms:.0f} ms Stripe latency (wrk, closed loop)",
            "",
            "| Endpoint | Server | Connections | Requests/s | p50 | p99 | CPU per request (spread) | Errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results.load:
            low, high = row.spread("cpu_ms_per_request")
            spread = f" ({low:.2f}–{high:.2f})" if len(row.results) > 1 else ""
            out.append(
                f"| {row.endpoint} | {row.server} | {row.connections} | {row.median('requests_per_second'):.0f} "
                f"| {_ms(row.median('p50_ms'))} | {_ms(row.median('p99_ms'))} "
                f"| {row.median('cpu_ms_per_request'):.2f} ms{spread} "
                f"| {sum(r.errors for r in row.results)} |"
            )
        out.append("")

    if results.settled:
        r = results.settled["result"]
        out += [
            "## Status of a settled session (answered from the payment store)",
            "",
            "| Connections | Requests/s | p50 | p99 | CPU per request | Errors | Stripe calls during the load |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {results.settled['connections']} | {r.requests_per_second:.0f} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)} "
            f"| {r.cpu_ms_per_request:.2f} ms | {r.errors} | {results.settled['stripe_calls']} |",
            "",
        ]

    if results.webhook:
        out += [
            "## Webhook deliveries into the Firestore emulator (every event delivered at least twice)",
            "",
            "| Server | Connections | Deliveries/s | New events | Duplicates | Failed | p50 | p99 | CPU per delivery |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results.webhook:
            r, c = row.result, row.result.counters
            out.append(
                f"| {row.server} | {row.connections} | {r.requests_per_second:.0f} | {c.get('new_events', '?')} "
                f"| {c.get('duplicates', '?')} | {c.get('failures', r.errors)} | {_ms(r.p50_ms)} "
                f"| {_ms(r.p99_ms)} | {r.cpu_ms_per_request:.2f} ms |"
            )
        out.append("")

    if results.memory:
        out += [
            "## Peak memory after the load (VmHWM)",
            "",
            "| Server | Serving process | Whole process tree |",
            "|---|---:|---:|",
        ]
        out += [f"| {name} | {largest:.0f} MiB | {total:.0f} MiB |" for name, largest, total in results.memory]
        out.append("")

    if results.notes:
        out += ["## Notes", ""] + [f"- {note}" for note in results.notes] + [""]
    return "\n".join(out)


def _cold_table(cases: list[Case]) -> list[str]:
    """Median and, in brackets, fastest run: other work on the machine only ever adds time."""
    by_label = {case.label: case for case in cases}
    out = [
        "| Server | Cold start: median (fastest) | Yardstick | Its cold start | Difference | First request "
        "| Same request, warm |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for case in cases:
        yard = by_label.get(case.yardstick or "")
        if yard:
            slower = [
                (mine - theirs) / theirs * 100
                for mine, theirs in ((case.median, yard.median), (min(case.cold), min(yard.cold)))
            ]
            compared = f"| {yard.label} | {_seconds(yard)} | {slower[0]:+.1f}% ({slower[1]:+.1f}%) "
        else:
            compared = "| | | "
        out.append(
            f"| {case.label} | {_seconds(case)} {compared}"
            f"| {_ms(_median_ms(case.first))} | {_ms(_median_ms(case.warm))} |"
        )
    return [*out, ""]


def _seconds(case: Case) -> str:
    return f"{case.median:.3f} s ({min(case.cold):.3f})"


def _median_ms(seconds: list[float]) -> float:
    if not seconds:
        return float("nan")
    ordered = sorted(seconds)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return value * 1000
