"""What the benchmark serves: each entry point, its minimal yardstick, the Express example.

A `Service` knows how to start one server and what its first successful
request is. The Python ones are started exactly as Cloud Functions starts
them (`functions-framework --target=…`), on the runtime environment
(bench/runtime.py), with a complete local configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import stripe

from bench import procs
from bench import standin as standin_module
from common import settings

BENCH = Path(__file__).resolve().parent
EXPRESS = BENCH / "express_example"
WEBHOOK_SECRET = "whsec_" + "benchmarksecret0123456789abcdef"

# The defaults (10 and 120 per minute per client IP) would answer a load test
# from one address with 429s after a few requests; the benchmark measures the
# service, so its limits are set out of reach. The limiter still counts every request.
BENCH_RATE_LIMIT = "100000000/minute"


@dataclass
class Context:
    """What every server of one run shares."""

    project: Path  # the checkout whose main.py is served
    scratch: Path
    standin: standin_module.Standin
    threads: str | None  # None: functions-framework's default (4 × CPU count)
    workers: str | None
    firestore: str | None = None  # host:port of the emulator, if running
    firestore_project: str = "bench"
    open_session: str = ""
    server_cpus: set[int] | None = None  # cores the servers under test are pinned to
    stripe_base: str | None = None  # where servers reach "Stripe", if not the stand-in itself
    python: Path | None = None  # the interpreter servers run on (bench/runtime.py); None: this one
    extra_env: dict = field(default_factory=dict)
    rate_limit_storage: str = "memory://"  # RATE_LIMIT_STORAGE_URI of the servers under test

    def env(self, store: str = "sqlite", **more) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in settings.NAMES}
        env.update(
            STRIPE_SECRET_KEY=standin_module.API_KEY,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            FRONTEND_URL=standin_module.FRONTEND_URL,
            STRIPE_API_BASE=self.stripe_base or self.standin.url,
            RATE_LIMIT_CREATE=BENCH_RATE_LIMIT,
            RATE_LIMIT_STATUS=BENCH_RATE_LIMIT,
            RATE_LIMIT_STORAGE_URI=self.rate_limit_storage,
        )
        if self.rate_limit_storage.startswith("firestore://"):
            if not self.firestore:
                raise RuntimeError("the Firestore emulator is not running")
            env.update(FIRESTORE_EMULATOR_HOST=self.firestore, GOOGLE_CLOUD_PROJECT=self.firestore_project)
        if store == "firestore":
            if not self.firestore:
                raise RuntimeError("the Firestore emulator is not running")
            env.update(
                PAYMENTS_STORE="firestore",
                FIRESTORE_EMULATOR_HOST=self.firestore,
                GOOGLE_CLOUD_PROJECT=self.firestore_project,
            )
        else:
            env["PAYMENTS_STORE"] = f"sqlite:///{self.scratch / 'payments.db'}"
        if self.threads:
            env["THREADS"] = self.threads
        if self.workers:
            env["WORKERS"] = self.workers
        env.update(self.extra_env)
        env.update(more)
        return env


@dataclass
class Service:
    """One server to start, and the request that shows it works."""

    name: str
    kind: str  # "python" or "node"
    target: str = ""
    source: Path | None = None
    store: str = "sqlite"
    create_path: str = "/"
    status_path: str = "/"

    def start(self, ctx: Context, label: str | None = None) -> procs.Process:
        port = procs.free_port()
        name = (label or self.name).replace(" ", "-")
        if self.kind == "node":
            env = ctx.env(PORT=str(port))
            return procs.Process(name, ["node", "server.js"], env, EXPRESS, ctx.scratch, port, ctx.server_cpus)
        assert self.source is not None, "a Python service names its source"
        command = procs.functions_framework(self.target, self.source, port, ctx.python)
        return procs.Process(name, command, ctx.env(self.store), self.source.parent, ctx.scratch, port, ctx.server_cpus)


def entry_points(project: Path) -> dict[str, Service]:
    main = project / "main.py"
    return {
        "create_embedded_session": Service("create_embedded_session", "python", "create_embedded_session", main),
        "session_status": Service("session_status", "python", "session_status", main, store="firestore"),
        "stripe_webhook": Service("stripe_webhook", "python", "stripe_webhook", main, store="firestore"),
        "api": Service(
            "api",
            "python",
            "api",
            main,
            create_path="/api/checkout/embedded-session",
            status_path="/api/checkout/session-status",
        ),
    }


def yardsticks() -> dict[str, Service]:
    minimal = BENCH / "minimal"
    return {
        "create": Service("minimal create", "python", "create_embedded_session", minimal / "create.py"),
        "status": Service("minimal status", "python", "session_status", minimal / "status.py", store="firestore"),
        "webhook": Service("minimal webhook", "python", "stripe_webhook", minimal / "webhook.py", store="firestore"),
    }


EXPRESS_SERVICE = Service(
    "express example", "node", create_path="/api/checkout/embedded-session", status_path="/api/checkout/session-status"
)


def express_ready(quiet: bool = True) -> str | None:
    """None if the Express example can run, else why not (installing its packages if needed)."""
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (EXPRESS / "node_modules" / "express").is_dir():
        if shutil.which("npm") is None:
            return "npm is not installed"
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=EXPRESS, capture_output=True, text=True
        )
        if result.returncode != 0:
            return f"`npm ci` in {EXPRESS.relative_to(procs.ROOT)} failed: {result.stderr.strip()[:200]}"
    return None


# -- the first request each kind of server must answer with 200 -------------


def signed_event(event: dict) -> tuple[bytes, str]:
    payload = json.dumps(event)
    return payload.encode(), stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)


def completed_event() -> dict:
    """A checkout.session.completed event for a new session, shaped as Stripe sends it."""
    from tests.support import stripe_objects

    session = stripe_objects.checkout_session()
    completed = stripe_objects.session_after("checkout.session.completed", session)
    return stripe_objects.event("checkout.session.completed", completed, created=int(time.time()))


def first_request(kind: str, service: Service, ctx: Context) -> tuple[str, str, bytes | None, dict]:
    """(method, path, body, headers) of the request a cold start of `kind` must answer."""
    if kind == "create":
        return "POST", service.create_path, b"{}", {"Content-Type": "application/json"}
    if kind == "status":
        return "GET", f"{service.status_path}?session_id={ctx.open_session}", None, {}
    if kind == "webhook":
        body, signature = signed_event(completed_event())
        return "POST", "/", body, {"Content-Type": "application/json", "Stripe-Signature": signature}
    raise ValueError(kind)
