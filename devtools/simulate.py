"""Play Stripe's part in a local run: pay, fail, expire, refund or dispute, and deliver the webhooks.

The offline counterpart of `stripe trigger` and `stripe listen`, for the
stack `make run` starts without a Stripe key. Each command changes the
session at the Stripe stand-in (through its `/_standin/` endpoints), then
POSTs the events that produces to the local webhook, signed with the
webhook secret exactly as Stripe signs them (the `Stripe-Signature` header
from `stripe.WebhookSignature.generate_signature_header`), so the webhook's
real signature check runs. It prints what the webhook answered, what the
payment store recorded and what the status endpoint (the page's view) says.

    python -m devtools.simulate pay [SESSION_ID|latest]                  complete and paid
    python -m devtools.simulate pay --async-succeed [SESSION_ID|latest]  complete unpaid, then paid later
    python -m devtools.simulate pay --async-fail [SESSION_ID|latest]     complete unpaid, then the payment fails
    python -m devtools.simulate expire [SESSION_ID|latest]
    python -m devtools.simulate refund [--amount CENTS] SESSION_ID       refund all, or part, of a payment
    python -m devtools.simulate dispute [--lose|--win] SESSION_ID        open a chargeback, and close it
    python -m devtools.simulate replay EVENT_ID                          deliver an event again
    python -m devtools.simulate pay --no-webhook [SESSION_ID|latest]     a payment whose webhook is lost
    python -m devtools.simulate latest                                   print the newest open session
    python -m devtools.simulate events                                   the event types the webhook handles

The settings (stand-in URL, key, webhook URL and secret, payment store)
come from `.local/dev.env`, which `run_local` writes while it runs; flags
override them. With a real Stripe test key use the Stripe CLI instead:
`stripe listen --forward-to localhost:8080/webhook` and
`stripe trigger checkout.session.completed`.

`--no-webhook` (pay, expire) changes the session at the stand-in but
delivers nothing, as when the webhook is down or misconfigured: the store
lacks the payment until `python -m payments.reconcile` records it from
Stripe's list of events.

The commands are also functions (`pay`, `expire`, `refund`, `dispute`,
`replay`, `latest_open_session`) returning a `Report`, for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests
import stripe

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV_FILE = ROOT / ".local" / "dev.env"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8080/webhook"
DEFAULT_API_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 15
# What Stripe's own webhook deliveries send, so logs and proxies see the same request.
DELIVERY_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    "Cache-Control": "no-cache",
}
# Settings the payment store reads, handed over from run_local through dev.env.
STORE_SETTINGS = (
    "PAYMENTS_STORE",
    "PAYMENTS_COLLECTION",
    "EVENTS_COLLECTION",
    "PAYMENT_INTENTS_COLLECTION",
    "FIRESTORE_EMULATOR_HOST",
    "GOOGLE_CLOUD_PROJECT",
)
STRIPE_CLI_HINT = (
    "With a real Stripe test key, use the Stripe CLI instead: "
    "`stripe listen --forward-to localhost:8080/webhook` and `stripe trigger checkout.session.completed`."
)


class SimulationError(RuntimeError):
    """Something the user can fix: the message says what."""


@dataclass
class Config:
    """Where the stand-in, the webhook, the API and the store are, and the secrets to use."""

    stripe_url: str
    secret_key: str
    webhook_url: str = DEFAULT_WEBHOOK_URL
    webhook_secret: str = ""
    api_url: str = DEFAULT_API_URL
    store_env: dict = field(default_factory=dict)


@dataclass
class Delivery:
    """One event POSTed to the webhook, and its answer."""

    event_id: str
    event_type: str
    status_code: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass
class Report:
    """What a command did, delivered and found recorded."""

    session_id: str
    action: str
    deliveries: list[Delivery] = field(default_factory=list)
    undelivered: list[dict] = field(default_factory=list)  # events kept from the webhook (--no-webhook)
    recorded: dict | None = None
    store_problem: str | None = None
    status: dict | None = None
    status_problem: str | None = None

    @property
    def ok(self) -> bool:
        return all(delivery.ok for delivery in self.deliveries)


# --------------------------------------------------------------------------
# Configuration


def read_env_file(path: Path) -> dict:
    """KEY=value lines, as run_local writes them (values shell-quoted); comments skipped."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, raw = line.partition("=")
        parts = shlex.split(raw)
        values[name.strip()] = parts[0] if parts else ""
    return values


def load_config(env_file: Path | None = DEFAULT_ENV_FILE, **overrides) -> Config:
    """Settings from dev.env, else the environment; non-empty `overrides` win.

    dev.env comes first because it holds what the running stack actually
    uses: a STRIPE_WEBHOOK_SECRET left in the shell for some other project
    must not sign our deliveries.
    """
    source = dict(os.environ)
    if env_file is not None and env_file.is_file():
        source.update(read_env_file(env_file))
    stripe_url = overrides.get("stripe_url") or source.get("STRIPE_API_BASE", "")
    if not stripe_url:
        where = f"{env_file} is missing and " if env_file is not None and not env_file.is_file() else ""
        raise SimulationError(
            f"No Stripe stand-in to drive: {where}STRIPE_API_BASE is not set. Start the stack without "
            "STRIPE_SECRET_KEY (`make run`) so it runs the stand-in. " + STRIPE_CLI_HINT
        )
    api_url = overrides.get("api_url") or source.get("API_URL") or DEFAULT_API_URL
    config = Config(
        stripe_url=stripe_url.rstrip("/"),
        secret_key=overrides.get("secret_key") or source.get("STRIPE_SECRET_KEY") or "sk_test_simulate",
        webhook_url=overrides.get("webhook_url") or source.get("WEBHOOK_URL") or api_url.rstrip("/") + "/webhook",
        webhook_secret=overrides.get("webhook_secret") or source.get("STRIPE_WEBHOOK_SECRET", ""),
        api_url=api_url.rstrip("/"),
        store_env={name: source[name] for name in STORE_SETTINGS if source.get(name)},
    )
    secret = config.webhook_secret.split(",")[0].strip()
    if not secret.startswith("whsec_"):
        raise SimulationError(
            "No webhook secret (whsec_…): set STRIPE_WEBHOOK_SECRET or start the stack with `make run`."
        )
    config.webhook_secret = secret
    return config


# --------------------------------------------------------------------------
# Talking to the stand-in


def _standin(config: Config, method: str, path: str, payload: dict | None = None) -> dict:
    url = config.stripe_url + path
    try:
        response = requests.request(method, url, json=payload, timeout=TIMEOUT_SECONDS)
    except requests.ConnectionError as error:
        raise SimulationError(
            f"Cannot reach the Stripe stand-in at {config.stripe_url}: is `make run` running?"
        ) from error
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        message = (body.get("error") or {}).get("message") or f"HTTP {response.status_code}"
        raise SimulationError(f"The Stripe stand-in refused {method} {path}: {message}")
    return body


def latest_open_session(config: Config) -> str:
    """The newest open Checkout Session, asked for with Stripe's own list API."""
    from common.stripe_rules import API_VERSION

    client = stripe.StripeClient(
        config.secret_key, stripe_version=API_VERSION, base_addresses={"api": config.stripe_url}
    )
    try:
        sessions = client.v1.checkout.sessions.list(params={"status": "open", "limit": 1})
    except stripe.APIConnectionError as error:
        raise SimulationError(
            f"Cannot reach the Stripe stand-in at {config.stripe_url}: is `make run` running?"
        ) from error
    except stripe.InvalidRequestError as error:
        raise SimulationError(f"Listing sessions failed: {error.user_message}") from error
    if not sessions.data:
        raise SimulationError("No open Checkout Session: press Pay on the example page first.")
    return sessions.data[0].id


def resolve_session(config: Config, session_id: str | None) -> str:
    if not session_id or session_id == "latest":
        return latest_open_session(config)
    return session_id


# --------------------------------------------------------------------------
# Delivering events like Stripe


def deliver(config: Config, event: dict) -> Delivery:
    """POST one event to the webhook, signed the way Stripe signs it."""
    payload = json.dumps(event, indent=2)
    headers = dict(DELIVERY_HEADERS)
    headers["Stripe-Signature"] = stripe.WebhookSignature.generate_signature_header(payload, config.webhook_secret)
    try:
        response = requests.post(
            config.webhook_url, data=payload.encode("utf-8"), headers=headers, timeout=TIMEOUT_SECONDS
        )
    except requests.ConnectionError as error:
        raise SimulationError(f"Cannot reach the webhook at {config.webhook_url}: is the API running?") from error
    return Delivery(event["id"], event["type"], response.status_code, response.text.strip())


@contextlib.contextmanager
def _environment(values: dict):
    """Set environment variables for the duration (the Firestore client reads them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def read_back(config: Config, report: Report) -> Report:
    """What the store holds for the session, and what the status endpoint tells the page."""
    from common import settings
    from common.errors import SettingError
    from payments.stores import open_store

    async def recorded():
        store = open_store(settings.from_env(config.store_env))
        try:
            return await store.get_payment(report.session_id)
        finally:
            await store.close()

    try:
        with _environment(config.store_env):
            report.recorded = asyncio.run(recorded())
    except SettingError as error:
        report.store_problem = f"{error.name} {error.problem}"
    except Exception as error:  # noqa: BLE001 - any store trouble is worth a line, not a traceback
        report.store_problem = f"{error.__class__.__name__}: {error}"

    try:
        response = requests.get(
            config.api_url + "/api/checkout/session-status",
            params={"session_id": report.session_id},
            timeout=TIMEOUT_SECONDS,
        )
        body = response.json()
        if response.status_code == 200:
            report.status = body
        else:
            report.status_problem = f"HTTP {response.status_code}: {body.get('error', '')}"
    except (requests.RequestException, ValueError) as error:
        report.status_problem = f"no answer from {config.api_url} ({error.__class__.__name__})"
    return report


def _act_and_deliver(
    config: Config, session_id: str, action: str, steps: list[tuple[str, dict]], webhook: bool = True
) -> Report:
    """Each step is an admin path under /_standin/ (sessions/ID/… or payments/ID/…) and its payload."""
    report = Report(session_id=session_id, action=action)
    for path, payload in steps:
        result = _standin(config, "POST", f"/_standin/{path}", payload)
        for event in result["events"]:
            if webhook:
                report.deliveries.append(deliver(config, event))
            else:
                report.undelivered.append(event)
    return read_back(config, report)


# --------------------------------------------------------------------------
# Commands


def pay(config: Config, session_id: str | None = None, outcome: str = "paid", webhook: bool = True) -> Report:
    """Complete a session: paid at once, or unpaid and then `async-succeed` / `async-fail`.

    `webhook=False` delivers none of the events: a payment whose webhook is lost.
    """
    session_id = resolve_session(config, session_id)
    at = f"sessions/{session_id}"
    if outcome == "paid":
        return _act_and_deliver(
            config, session_id, "completed and paid", [(f"{at}/complete", {"payment_status": "paid"})], webhook
        )
    if outcome not in ("async-succeed", "async-fail"):
        raise ValueError("outcome must be paid, async-succeed or async-fail")
    succeeded = outcome == "async-succeed"
    return _act_and_deliver(
        config,
        session_id,
        "completed unpaid, then the delayed payment " + ("succeeded" if succeeded else "failed"),
        [(f"{at}/complete", {"payment_status": "unpaid"}), (f"{at}/async_payment", {"succeeded": succeeded})],
        webhook,
    )


def expire(config: Config, session_id: str | None = None, webhook: bool = True) -> Report:
    session_id = resolve_session(config, session_id)
    return _act_and_deliver(config, session_id, "expired", [(f"sessions/{session_id}/expire", {})], webhook)


def refund(config: Config, session_id: str, amount: int | None = None) -> Report:
    """Refund a paid session's payment: all that remains, or `amount` cents (charge.refunded follows)."""
    what = "fully refunded" if amount is None else f"refunded {amount} cents"
    payload = {} if amount is None else {"amount": amount}
    return _act_and_deliver(config, session_id, what, [(f"payments/{session_id}/refund", payload)])


def dispute(config: Config, session_id: str, close: str | None = None) -> Report:
    """Open a chargeback on a paid session's payment; `close` = "won" or "lost" closes it too."""
    steps: list[tuple[str, dict]] = [(f"payments/{session_id}/dispute", {})]
    if close is not None:
        steps.append((f"payments/{session_id}/close_dispute", {"won": close == "won"}))
    return _act_and_deliver(config, session_id, "disputed" + (f", and the dispute {close}" if close else ""), steps)


def replay(config: Config, event_id: str) -> Report:
    """Deliver an already-sent event again, as Stripe's retries do: the webhook should call it a duplicate."""
    event = _standin(config, "GET", f"/_standin/events/{event_id}")
    obj = event["data"]["object"]
    session_id = (
        obj["id"]
        if obj.get("object") == "checkout.session"
        else (_standin(config, "GET", f"/_standin/payments/{obj['id']}")["session"])
    )
    report = Report(session_id=session_id, action=f"replayed {event_id}")
    report.deliveries.append(deliver(config, event))
    return read_back(config, report)


# --------------------------------------------------------------------------
# Output


def format_report(report: Report, config: Config) -> str:
    lines = [f"Session {report.session_id}: {report.action} at the Stripe stand-in."]
    for delivery in report.deliveries:
        lines.append(f"  {delivery.event_type} {delivery.event_id} -> {config.webhook_url}")
        lines.append(f"    webhook answered {delivery.status_code} {delivery.body}")
    for event in report.undelivered:
        lines.append(f"  {event['type']} {event['id']} -> not delivered (--no-webhook)")
    if report.recorded is not None:
        record = report.recorded
        amount = record.get("amount_total")
        money = f"{amount / 100:.2f} {str(record.get('currency') or '').upper()}" if isinstance(amount, int) else "?"
        lines.append(
            f"  recorded: outcome={record.get('outcome')} status={record.get('status')} "
            f"payment_status={record.get('payment_status')} amount={money} "
            f"refunded={record.get('amount_refunded')} email={record.get('customer_email')} "
            f"last_event={record.get('last_event_id')}"
        )
        if record.get("dispute"):
            lines.append(f"  dispute: {json.dumps(record['dispute'])}")
    elif report.store_problem:
        lines.append(f"  recorded: (could not read the payment store: {report.store_problem})")
    else:
        lines.append("  recorded: nothing for this session in the payment store")
    if report.status is not None:
        lines.append(f"  status endpoint (what the page shows): {json.dumps(report.status)}")
    else:
        lines.append(f"  status endpoint: {report.status_problem}")
    if not report.ok:
        lines.append("The webhook did not accept every event; see the API's log for the reason.")
    if report.undelivered:
        lines.append(
            "Stripe still lists these events: `python -m payments.reconcile` records them, with this "
            "stack's settings: (set -a; . .local/dev.env; python -m payments.reconcile --since 1h)"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--env-file", type=Path, default=DEFAULT_ENV_FILE, help="settings written by run_local (default .local/dev.env)"
    )
    common.add_argument("--stripe-url", help="the Stripe stand-in's base URL (STRIPE_API_BASE)")
    common.add_argument("--webhook-url", help=f"where to deliver events (default {DEFAULT_WEBHOOK_URL})")
    common.add_argument("--webhook-secret", help="whsec_… to sign with (STRIPE_WEBHOOK_SECRET)")
    common.add_argument("--api-url", help="the API's base URL, for reading the status back")
    lost = argparse.ArgumentParser(add_help=False)
    lost.add_argument(
        "--no-webhook",
        dest="webhook",
        action="store_false",
        help="change the session but deliver nothing, as if the webhook were lost",
    )

    parser = argparse.ArgumentParser(
        prog="python -m devtools.simulate",
        description="Simulate Stripe against the local stand-in and deliver signed webhooks. " + STRIPE_CLI_HINT,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pay_parser = commands.add_parser("pay", parents=[common, lost], help="complete a session and pay it")
    outcome = pay_parser.add_mutually_exclusive_group()
    outcome.add_argument(
        "--async-succeed",
        dest="outcome",
        action="store_const",
        const="async-succeed",
        help="complete unpaid, then the delayed payment succeeds",
    )
    outcome.add_argument(
        "--async-fail",
        dest="outcome",
        action="store_const",
        const="async-fail",
        help="complete unpaid, then the delayed payment fails",
    )
    pay_parser.set_defaults(outcome="paid")
    pay_parser.add_argument("session_id", nargs="?", default="latest", help="cs_test_… or latest (default)")
    expire_parser = commands.add_parser("expire", parents=[common, lost], help="expire an open session")
    expire_parser.add_argument("session_id", nargs="?", default="latest", help="cs_test_… or latest (default)")
    refund_parser = commands.add_parser("refund", parents=[common], help="refund a paid session's payment")
    refund_parser.add_argument("--amount", type=int, help="cents to refund (default: all that remains)")
    refund_parser.add_argument("session_id", help="cs_test_… of a paid session")
    dispute_parser = commands.add_parser("dispute", parents=[common], help="open a chargeback on a paid session")
    closing = dispute_parser.add_mutually_exclusive_group()
    closing.add_argument("--lose", dest="close", action="store_const", const="lost", help="then close it lost")
    closing.add_argument("--win", dest="close", action="store_const", const="won", help="then close it won")
    dispute_parser.add_argument("session_id", help="cs_test_… of a paid session")
    replay_parser = commands.add_parser("replay", parents=[common], help="deliver an event again")
    replay_parser.add_argument("event_id", help="evt_… as printed by an earlier command")
    commands.add_parser("latest", parents=[common], help="print the newest open session id")
    commands.add_parser(
        "events",
        help="print the event types the webhook handles, comma-separated "
        "(for stripe listen --events and the endpoint's registration)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "events":
        from payments.events import HANDLED_EVENTS

        print(",".join(HANDLED_EVENTS))
        return 0
    try:
        config = load_config(
            args.env_file,
            stripe_url=args.stripe_url,
            webhook_url=args.webhook_url,
            webhook_secret=args.webhook_secret,
            api_url=args.api_url,
        )
        if args.command == "latest":
            print(latest_open_session(config))
            return 0
        if args.command == "pay":
            report = pay(config, args.session_id, args.outcome, args.webhook)
        elif args.command == "expire":
            report = expire(config, args.session_id, args.webhook)
        elif args.command == "refund":
            report = refund(config, args.session_id, args.amount)
        elif args.command == "dispute":
            report = dispute(config, args.session_id, args.close)
        else:
            report = replay(config, args.event_id)
    except SimulationError as error:
        print(f"simulate: {error}", file=sys.stderr)
        return 1
    print(format_report(report, config))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
