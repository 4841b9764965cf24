"""Run the benchmark: `make bench` (or `python -m bench`), `--quick` for a smoke run.

One run starts a Stripe stand-in, the Firestore emulator, each entry point
and its minimal yardstick, and the Express example, then measures, side by
side: cold starts, create and status under load at 1, 16 and 64
connections, status of a settled session, webhook deliveries, and peak
memory. It prints a table and writes it to bench/results.md.

`--project DIR` serves another checkout's main.py (e.g. a `git worktree` of
an older commit) with this benchmark, which is how before/after figures are
made with the same tool. `--rate-limit-storage firestore://` counts every
request in the Firestore emulator instead of in memory: run it beside a plain
run to see what the shared limiter adds to each create and status.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import coldstart, load, procs, report, runtime, services
from bench.standin import Standin

RESULTS = Path(__file__).resolve().parent / "results.md"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: one cold start each, 1 s loads at 1 and 16 connections"
    )
    parser.add_argument("--latency", type=float, default=0.1, help="Stripe stand-in latency under load, seconds")
    parser.add_argument("--runs", type=int, help="interleaved cold-start runs (default 9, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per load run (default 10, quick 1)")
    parser.add_argument("--connections", help="comma-separated levels (default 1,16,64; quick 1,16)")
    parser.add_argument(
        "--handshake-ms",
        type=float,
        default=60.0,
        help="extra cold-start table: each new connection to Stripe costs this long, as a TCP and "
        "TLS handshake to api.stripe.com does (0: leave the table out; quick: left out)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="load runs per endpoint, level and server, interleaved; medians and spread are "
        "reported (default 3, quick 1)",
    )
    parser.add_argument(
        "--threads",
        default="default",
        help="THREADS for functions-framework's gunicorn, for a --project served with threads "
        "('default' leaves it unset)",
    )
    parser.add_argument("--workers", default="1", help="WORKERS for functions-framework's gunicorn")
    parser.add_argument(
        "--server-cores",
        type=int,
        default=1,
        help="cores each server under test is pinned to, like --cpu on Cloud Run (0: no pinning)",
    )
    parser.add_argument("--project", type=Path, default=procs.ROOT, help="checkout whose main.py is served")
    parser.add_argument(
        "--rate-limit-storage",
        default="memory://",
        help="RATE_LIMIT_STORAGE_URI of the servers under test, e.g. firestore:// (the emulator)",
    )
    parser.add_argument(
        "--runtime",
        choices=("deployed", "dev"),
        help="serve from a virtual environment of requirements.txt alone, as deployed "
        "(default), or from this development one (default with --quick: no setup)",
    )
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: cold,handshake,load,webhook,express")
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write the table (default bench/results.md; --quick writes nothing unless given)",
    )
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 9)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.runtime = args.runtime or ("dev" if args.quick else "deployed")
    args.duration = args.duration or (1.0 if args.quick else 10.0)
    args.levels = [int(n) for n in (args.connections or ("1,16" if args.quick else "1,16,64")).split(",")]
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    args.out = args.out or (None if args.quick else RESULTS)
    args.project = args.project.resolve()
    return args


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "Machine": f"{os.cpu_count()} cores{f' ({model})' if model else ''}, {platform.system()} {platform.release()}",
        "Python": platform.python_version(),
    }
    if shutil.which("node"):
        info["Node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    if load.available():
        version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        info["Load generator"] = (version.stdout or version.stderr).splitlines()[0].split(" [")[0]
    return info


def start_firestore(notes: list[str]):
    try:
        from devtools.firestore_emulator import start_firestore_emulator

        return start_firestore_emulator()
    except Exception as error:  # noqa: BLE001 - no emulator, Java or gcloud, or it failed to start: a note
        notes.append(
            f"Firestore emulator not started ({error.__class__.__name__}: {str(error)[:120]}): "
            "status and webhook cold starts and the webhook load are left out."
        )
        return None


def main(argv=None) -> int:
    args = parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731 - progress, not results
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    threads = None if args.threads == "default" else args.threads
    server_cpus, harness_cpus = procs.split_cores(args.server_cores)
    if harness_cpus:
        os.sched_setaffinity(0, harness_cpus)  # the stand-in, the emulator and wrk inherit it
    results = report.Results(
        load_latency_ms=args.latency * 1000,
        machine=machine(),
        settings={
            "Served": ("this checkout's main.py" if args.project == procs.ROOT else f"main.py of {args.project.name}/")
            + (
                ", on requirements.txt alone (bench/runtime.py)"
                if args.runtime == "deployed"
                else ", on the development environment"
            ),
            "Serving": f"functions-framework as deployed (its ASGI server for this checkout), WORKERS={args.workers}"
            + (f", THREADS={threads}" if threads else ""),
            "Load runs": f"{args.repeat} per endpoint, level and server, interleaved; medians, with the spread "
            "(lowest–highest) of CPU per request",
            "Cores": (
                f"each server under test pinned to core {_cores(server_cpus)} (an instance with "
                f"--cpu={len(server_cpus)}); stand-in, emulator and wrk on core {_cores(harness_cpus or set())}"
                if server_cpus
                else "not pinned: servers, stand-in and wrk share every core"
            ),
            "Stripe stand-in latency": f"{args.latency * 1000:.0f} ms under load, 0 ms for cold starts",
            "Rate limits": f"RATE_LIMIT_CREATE and RATE_LIMIT_STATUS = {services.BENCH_RATE_LIMIT} "
            "(the defaults would answer 429 to a load test from one address), counted in "
            f"{args.rate_limit_storage}"
            + (" (the emulator, on the harness cores)" if _counts_in_firestore(args) else ""),
            "Command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
    )
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure; say how much there was
    standin = Standin(scratch)
    needs_emulator = _counts_in_firestore(args) or not {"cold", "webhook"} <= args.skip
    emulator = start_firestore(results.notes) if needs_emulator else None
    if _counts_in_firestore(args) and not emulator:
        raise SystemExit("--rate-limit-storage firestore:// needs the Firestore emulator, which did not start")
    ctx = services.Context(
        project=args.project,
        scratch=scratch,
        standin=standin,
        threads=threads,
        workers=args.workers,
        firestore=emulator.host_port if emulator else None,
        firestore_project=f"bench-{uuid.uuid4().hex[:8]}",
        server_cpus=server_cpus,
        rate_limit_storage=args.rate_limit_storage,
        python=runtime.python(log) if args.runtime == "deployed" else None,
    )
    express_problem = "skipped (--skip express)" if "express" in args.skip else services.express_ready()
    if express_problem:
        results.notes.append(f"Express example left out: {express_problem}.")
    try:
        if "cold" not in args.skip:
            cold_starts(ctx, args, results, express_problem is None, log)
        if args.handshake_ms > 0 and not args.quick and "handshake" not in args.skip:
            handshake_cold_starts(ctx, args, results, express_problem is None, log)
        if not load.available():
            results.notes.append("wrk is not installed (Debian: apt-get install wrk): no load figures.")
        else:
            if "load" not in args.skip:
                checkout_load(ctx, args, results, express_problem is None, log)
            if "webhook" not in args.skip and emulator:
                webhook_load(ctx, args, results, log)
    except Exception:
        log(f"benchmark failed; server logs are in {scratch}")
        raise
    finally:
        standin.stop()
        if emulator:
            emulator.stop()

    results.machine["Load average (1 min) before / after"] = f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"
    table = report.markdown(results)
    print(table)
    if args.out:
        args.out.write_text(table)
        log(f"written to {args.out}")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _counts_in_firestore(args) -> bool:
    return args.rate_limit_storage.startswith("firestore://")


def _cores(cores: set[int]) -> str:
    return ",".join(str(core) for core in sorted(cores))


def cold_starts(ctx, args, results, with_express: bool, log) -> None:
    ctx.standin.set_latency(0.0)
    ctx.open_session = ctx.standin.create_session()
    entry, yard = services.entry_points(args.project), services.yardsticks()
    cases = [
        coldstart.Case("create_embedded_session", "create", entry["create_embedded_session"], "minimal create"),
        coldstart.Case("api", "create", entry["api"], "minimal create"),
        coldstart.Case("minimal create", "create", yard["create"]),
    ]
    if ctx.firestore:
        cases += [
            coldstart.Case("session_status", "status", entry["session_status"], "minimal status"),
            coldstart.Case("minimal status", "status", yard["status"]),
            coldstart.Case("stripe_webhook", "webhook", entry["stripe_webhook"], "minimal webhook"),
            coldstart.Case("minimal webhook", "webhook", yard["webhook"]),
        ]
    if with_express:
        cases.append(coldstart.Case("express example (create)", "create", services.EXPRESS_SERVICE))
    log(f"cold starts: {len(cases)} cases × {args.runs} runs")
    coldstart.run(cases, ctx, args.runs, log, warm_up=not args.quick)
    results.cold = cases
    if ctx.firestore:
        results.notes.append(
            "Cold starts of session_status and stripe_webhook use the Firestore store (emulator), "
            "as on Google Cloud, and so do their yardsticks; create and api never touch the store."
        )


def handshake_cold_starts(ctx, args, results, with_express: bool, log) -> None:
    """Cold starts of create when opening a connection to Stripe takes `--handshake-ms`."""
    port = procs.free_port()
    relay = procs.Process(
        "handshake-relay",
        [
            sys.executable,
            "-m",
            "bench.handshake",
            "--port",
            str(port),
            "--target",
            f"127.0.0.1:{ctx.standin.process.port}",
            "--delay-ms",
            str(args.handshake_ms),
        ],
        None,
        procs.ROOT,
        ctx.scratch,
        port,
    )
    procs.wait_until_listening(relay)
    ctx.stripe_base = relay.url
    try:
        entry, yard = services.entry_points(args.project), services.yardsticks()
        cases = [
            coldstart.Case("create_embedded_session", "create", entry["create_embedded_session"], "minimal create"),
            coldstart.Case("minimal create", "create", yard["create"]),
        ]
        if with_express:
            cases.append(coldstart.Case("express example (create)", "create", services.EXPRESS_SERVICE))
        log(f"cold starts with a {args.handshake_ms:.0f} ms handshake: {len(cases)} cases × {args.runs} runs")
        coldstart.run(cases, ctx, args.runs, log, warm_up=False)
        results.cold_handshake = cases
        results.handshake_ms = args.handshake_ms
    finally:
        ctx.stripe_base = None
        relay.stop()


def checkout_load(ctx, args, results, with_express: bool, log) -> None:
    """create and status at each connection level, this service and Express taking turns."""
    entry = services.entry_points(args.project)
    plans = [
        ("create", "post_json.lua", entry["create_embedded_session"]),
        # Load runs use the SQLite store: the emulator would share the cores
        # and say nothing about real Firestore; the Stripe call is the point.
        ("status", "get.lua", dataclasses.replace(entry["session_status"], store="sqlite")),
    ]
    express = services.EXPRESS_SERVICE.start(ctx) if with_express else None
    try:
        if express:
            procs.wait_until_listening(express)
        for endpoint, script, service in plans:
            ctx.standin.reset(args.latency)
            session = ctx.standin.create_session()
            server = service.start(ctx, label=f"load-{service.name}")
            try:
                procs.wait_until_listening(server)
                contenders = [("Python: " + service.name, server, service)]
                if express:
                    contenders.append(("Node: express example", express, services.EXPRESS_SERVICE))
                for _, process, svc in contenders if not args.quick else ():  # warm-up: connections, caches
                    load.run(_url(process, svc, endpoint, session), max(args.levels), min(2.0, args.duration), script)
                for level in args.levels:
                    rows = {name: report.LoadRow(endpoint, name, level) for name, _, _ in contenders}
                    for _ in range(args.repeat):
                        for name, process, svc in contenders:
                            result = load.measured(
                                process, _url(process, svc, endpoint, session), level, args.duration, script
                            )
                            rows[name].results.append(result)
                            log(
                                f"  {endpoint} {name} c{level}: {result.requests_per_second:.0f} req/s, "
                                f"p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms, "
                                f"CPU {result.cpu_ms_per_request:.3f} ms/request, errors {result.errors}"
                            )
                        ctx.standin.reset(args.latency)  # keep the stand-in's memory flat
                        session = ctx.standin.create_session()
                    results.load.extend(rows.values())
                if endpoint == "status":
                    settled_status(ctx, args, results, server, service, log)
                results.memory.append((service.name, *server.peak_rss_mib()))
            finally:
                server.stop()
        api_memory(ctx, args, results, entry["api"])
        if express:
            results.memory.append(("express example", *express.peak_rss_mib()))
    finally:
        if express:
            express.stop()


def _url(process, service, endpoint: str, session: str) -> str:
    if endpoint == "create":
        return process.url + service.create_path
    return process.url + f"{service.status_path}?session_id={session}"


def settled_status(ctx, args, results, server, service, log) -> None:
    """A session the store knows is complete is answered without asking Stripe."""
    session = ctx.standin.create_session()
    ctx.standin.complete(session)
    status, body = procs.request(_url(server, service, "status", session))  # asks Stripe once, records it
    if status != 200 or b'"complete"' not in body:
        raise RuntimeError(f"status of a completed session answered {status}: {body[:200]!r}")
    before = ctx.standin.request_count()
    level = max(args.levels)
    result = load.measured(server, _url(server, service, "status", session), level, args.duration, "get.lua")
    calls = ctx.standin.request_count() - before
    results.settled = {"connections": level, "result": result, "stripe_calls": calls}
    log(
        f"  settled status c{level}: {result.requests_per_second:.0f} req/s, "
        f"CPU {result.cpu_ms_per_request:.3f} ms/request, Stripe calls during load: {calls}"
    )


def api_memory(ctx, args, results, service) -> None:
    """`api` serves every path; its memory after a create and a status load."""
    ctx.standin.reset(args.latency)
    session = ctx.standin.create_session()
    server = service.start(ctx, label="load-api")
    try:
        procs.wait_until_listening(server)
        level = max(args.levels)
        load.run(_url(server, service, "create", session), level, args.duration / 2, "post_json.lua")
        load.run(_url(server, service, "status", session), level, args.duration / 2, "get.lua")
        results.memory.append(("api", *server.peak_rss_mib()))
    finally:
        server.stop()


def webhook_load(ctx, args, results, log) -> None:
    """Signed deliveries, each event at least twice, into the Firestore emulator."""
    unique = 100 if args.quick else 1500
    events = [services.signed_event(services.completed_event()) for _ in range(unique)]
    # e1 e0 e2 e1 e3 e2 …: each event twice, its second delivery close behind
    # the first, so some duplicates arrive while the first is still being stored.
    order = [events[0]]
    for i in range(1, unique):
        order += [events[i], events[i - 1]]
    order.append(events[-1])
    data = ctx.scratch / "webhook-deliveries.txt"
    data.write_text("".join(f"{signature}\t{body.decode()}\n" for body, signature in order))
    env = {**os.environ, "BENCH_WEBHOOK_EVENTS": str(data)}
    level = 16
    targets = [("Python: stripe_webhook", services.entry_points(args.project)["stripe_webhook"])]
    for name, service in targets:
        # Each server stores into an empty project, so its first delivery of an event is new.
        ctx.extra_env = {"GOOGLE_CLOUD_PROJECT": f"bench-{uuid.uuid4().hex[:8]}"}
        server = service.start(ctx, label=f"load-{service.name}")
        ctx.extra_env = {}
        try:
            procs.wait_until_listening(server)
            result = load.measured(server, server.url + "/", level, args.duration, "webhook.lua", env=env, threads=2)
            results.webhook.append(report.LoadRow("webhook", name, level, [result]))
            log(f"  webhook {name} c{level}: {result.requests_per_second:.0f} deliveries/s {result.counters}")
            if service.name == "stripe_webhook":
                results.memory.append((service.name, *server.peak_rss_mib()))
        finally:
            server.stop()
    if results.webhook and time.time() - int(order[0][1].split(",")[0][2:]) > 300:
        results.notes.append("Some webhook deliveries were older than Stripe's 5-minute tolerance.")


if __name__ == "__main__":
    sys.exit(main())
