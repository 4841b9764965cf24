"""Reconcile the payment store with Stripe, so that no payment is lost with its webhook.

Stripe retries a webhook delivery for about three days, then gives up. A
misconfigured signing secret, a deleted endpoint or a long store outage
would lose those payments from our records for good. Stripe keeps every
event for 30 days, so this lists the events of every type the webhook
handles (`GET /v1/events`, newest first, 100 a page) and applies each one
exactly as the webhook does: `payments.events.change_from_event`, then
`record_event` on the same store. An event already stored is a duplicate
and changes nothing; a missed one is recorded. Each event is one store
transaction, so a run that stops half-way leaves whole events behind it
and the next run completes the rest.

    python -m payments.reconcile [--since 72h] [--until 10m] [--deadline 5m] [--check-sessions]

`--check-sessions` also lists the Checkout Sessions completed in the
window and reports any without a complete payment record. It writes
nothing: it is an independent check of the event path, and writing through
it would hide the very gap it exists to show.

The settings are the service's own (`common.settings`): STRIPE_SECRET_KEY
(a restricted key with Events and Checkout Sessions read is enough),
STRIPE_API_BASE, PAYMENTS_STORE and the collection names. The summary is one
JSON log line (`"reconcile": "summary"`) followed by the same in words. The
exit status is 0 when every event listed is on record (nothing missing, or
repaired now), 1 when listing or applying failed or a completed session has
no record, and 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common import logs
from common.errors import InvalidRequest, ProviderBusy, ProviderError, ProviderUnavailable, SettingError
from payments import events
from payments.store import PaymentStore, StoreUnavailable

# Stripe's retention of events: older ones are neither listed nor retrievable.
EVENT_RETENTION_SECONDS = 30 * 24 * 3600
PAGE_SIZE = 100  # Stripe's largest page
# A page Stripe refuses for load (429, which the SDK does not retry) or fails
# (after the SDK's own retries) is asked for again, this many times in all,
# waiting FIRST_BACKOFF_SECONDS, then twice as long each time.
PAGE_ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 1.0
# Ids named in a summary line; the per-event lines name every one.
LISTED_IDS = 20

_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Window:
    """Events created from `since` to `until`, inclusive (Unix seconds)."""

    since: int
    until: int

    @classmethod
    def parse(cls, since: str, until: str | None, now: float) -> Window:
        window = cls(moment(since, now), moment(until, now) if until else int(now))
        if window.since > window.until:
            raise ValueError("--since must come before --until")
        if window.since < int(now) - EVENT_RETENTION_SECONDS:
            raise ValueError("--since reaches back more than the 30 days Stripe keeps events")
        return window

    def params(self, page_size: int) -> dict:
        return {"created": {"gte": self.since, "lte": self.until}, "limit": page_size}

    def describe(self) -> str:
        return f"{_iso(self.since)} to {_iso(self.until)}"


def duration(text: str) -> int:
    """Seconds in "90s", "90m", "72h" or "3d"."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90m, 72h or 3d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def moment(text: str, now: float) -> int:
    """A duration back from `now`, or an ISO 8601 time (UTC unless it names its offset)."""
    try:
        return int(now) - duration(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration like 72h nor an ISO time like 2026-07-01T09:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


@dataclass
class Summary:
    """What a run saw and did."""

    window: Window
    seen: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    failed_events: list[str] = field(default_factory=list)
    sessions_checked: int | None = None
    unrecorded_sessions: list[str] = field(default_factory=list)
    problem: str | None = None  # why the run stopped before the end

    @property
    def failed(self) -> int:
        return len(self.failed_events)

    @property
    def outcome(self) -> str:
        """failed, mismatch (a completed session has no record), repaired, or clean."""
        if self.problem or self.failed_events:
            return "failed"
        if self.unrecorded_sessions:
            return "mismatch"
        return "repaired" if self.applied else "clean"

    def stop(self, problem: str, error: BaseException) -> None:
        """The run cannot go on: say why, where a person will see it."""
        self.problem = problem
        logs.error_report(f"reconcile: {problem}", error, reconcile="run", problem=problem)

    def fields(self) -> dict:
        return {
            "reconcile": "summary",
            "outcome": self.outcome,
            "since": _iso(self.window.since),
            "until": _iso(self.window.until),
            "seen": self.seen,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "failed": self.failed,
            "failed_events": self.failed_events[:LISTED_IDS],
            "sessions_checked": self.sessions_checked,
            "sessions_unrecorded": len(self.unrecorded_sessions),
            "unrecorded_sessions": self.unrecorded_sessions[:LISTED_IDS],
            "problem": self.problem,
        }

    def text(self) -> str:
        lines = [
            f"Stripe events created {self.window.describe()}: {self.seen} seen, {self.applied} newly applied, "
            f"{self.duplicates} duplicates, {self.skipped} skipped, {self.failed} failed."
        ]
        if self.sessions_checked is not None:
            lines.append(
                f"Checkout Sessions completed in the window: {self.sessions_checked} checked, "
                f"{len(self.unrecorded_sessions)} without a complete payment record."
            )
        if self.problem:
            lines.append(f"Stopped early: {self.problem}. Events applied so far are kept; run again to finish.")
        lines.append(f"Outcome: {self.outcome}.")
        return "\n".join(lines)


async def reconcile(
    stripe,
    store: PaymentStore,
    window: Window,
    *,
    check_sessions: bool = False,
    summary: Summary | None = None,
    page_size: int = PAGE_SIZE,
    first_backoff: float = FIRST_BACKOFF_SECONDS,
) -> Summary:
    """Apply every handled event of `window` through the webhook's path; optionally check sessions.

    `stripe` is a `common.stripe_api.StripeApi`. Failures end up in the
    summary (and in Error Reporting), never as an exception.
    """
    summary = summary or Summary(window)
    event_params = {**window.params(page_size), "types": list(events.HANDLED_EVENTS)}
    try:
        async for page in _pages(stripe, "/v1/events", event_params, first_backoff):
            for event in page:
                await _apply(store, event, summary)
        if check_sessions:
            summary.sessions_checked = 0
            session_params = {**window.params(page_size), "status": "complete"}
            async for page in _pages(stripe, "/v1/checkout/sessions", session_params, first_backoff):
                for session in page:
                    await _check_session(store, session, summary)
    except SettingError as error:
        summary.stop(f"{error.name} {error.problem}", error)
    except ProviderError as error:
        summary.stop(f"Stripe failed to list ({error.__class__.__name__}, request {error.request_id})", error)
    except StoreUnavailable as error:
        summary.stop("the payment store is unavailable", error)
    except Exception as error:  # noqa: BLE001 - a bug: reported, and the run still ends with its summary
        summary.stop(f"unexpected {error.__class__.__name__}", error)
    return summary


async def run(context, window: Window, deadline_seconds: float, check_sessions: bool = False) -> Summary:
    """One run against the context's Stripe client and store, stopped at the deadline."""
    summary = Summary(window)
    try:
        async with asyncio.timeout(deadline_seconds):
            try:
                stripe = await context.stripe()
                store = context.store()
            except SettingError as error:
                summary.stop(f"{error.name} {error.problem}", error)
            except StoreUnavailable as error:
                summary.stop("the payment store could not be opened", error)
            else:
                await reconcile(stripe, store, window, check_sessions=check_sessions, summary=summary)
    except TimeoutError as error:
        summary.stop(f"the deadline of {deadline_seconds:g} s passed", error)
    finally:
        await context.close()
    return summary


async def _pages(stripe, path: str, params: dict, first_backoff: float):
    """Every page of a Stripe list, newest first, each asked for again while Stripe is busy or failing."""
    after = None
    while True:
        page = await _page(stripe, path, {**params, **({"starting_after": after} if after else {})}, first_backoff)
        data = page.get("data") or []
        yield data
        if not page.get("has_more") or not data:
            return
        after = data[-1]["id"]


async def _page(stripe, path: str, params: dict, first_backoff: float) -> dict:
    attempt = 1
    while True:
        try:
            return await stripe.list(path, params)
        except (ProviderBusy, ProviderUnavailable) as error:
            if attempt == PAGE_ATTEMPTS:
                raise
            wait = first_backoff * 2 ** (attempt - 1)
            logs.write(
                "WARNING",
                f"Stripe could not list {path} ({error.__class__.__name__}); retrying in {wait:g} s",
                reconcile="retry",
                error=error.__class__.__name__,
                attempt=attempt,
            )
            await asyncio.sleep(wait)
            attempt += 1


async def _apply(store: PaymentStore, event: dict, summary: Summary) -> None:
    """One event through the webhook's path: check it, then store it with its change in one transaction."""
    summary.seen += 1
    ids = {"event_id": event.get("id"), "event_type": event.get("type")}
    try:
        change = events.change_from_event(event)
    except InvalidRequest as error:  # the webhook would refuse it too; a person must look at it
        summary.failed_events.append(str(event.get("id")))
        logs.error_report(
            f"reconcile: Stripe event refused: {error}", error, reconcile="event", outcome="refused", **ids
        )
        return
    if change is None:  # a handled type that names no payment (a charge without a PaymentIntent)
        summary.skipped += 1
        return
    try:
        stored = await store.record_event(change)
    except StoreUnavailable:
        summary.failed_events.append(str(event.get("id")))
        raise
    if not stored:
        summary.duplicates += 1
        return
    summary.applied += 1
    data = event["data"]["object"]
    extra = (
        {"session_id": data.get("id"), "payment_status": data.get("payment_status")}
        if (event["type"] in events.SESSION_EVENTS)
        else {"payment_intent": data.get("payment_intent")}
    )
    logs.write(
        "WARNING",
        f"Recorded {event['type']} {event['id']}, which the webhook had not.",
        reconcile="event",
        outcome="recorded",
        age_seconds=int(time.time()) - event["created"],
        **ids,
        **extra,
    )


async def _check_session(store: PaymentStore, session: dict, summary: Summary) -> None:
    summary.sessions_checked = (summary.sessions_checked or 0) + 1
    record = await store.get_payment(session["id"])
    if record is not None and record.get("status") == "complete":
        return
    summary.unrecorded_sessions.append(session["id"])
    logs.write(
        "WARNING",
        f"Checkout Session {session['id']} is complete at Stripe but not in the payment store.",
        reconcile="session",
        session_id=session["id"],
        payment_status=session.get("payment_status"),
        recorded_status=record.get("status") if record else None,
    )


def _iso(moment_: int) -> str:
    return datetime.fromtimestamp(moment_, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m payments.reconcile",
        description="Apply every Stripe event the webhook handles, from a window of time, to the payment store.",
    )
    parser.add_argument(
        "--since",
        default="72h",
        help="start of the window: a duration back from now (90m, 72h, 3d) or an ISO time; "
        "at most 30 days (default 72h, Stripe's retry period)",
    )
    parser.add_argument(
        "--until",
        default=None,
        help="end of the window, in the same forms (default now); e.g. 10m leaves the newest "
        "events to a webhook delivery still on its way",
    )
    parser.add_argument("--deadline", default="5m", help="stop after this long (default 5m)")
    parser.add_argument(
        "--check-sessions",
        action="store_true",
        help="also report Checkout Sessions completed in the window that have no payment record",
    )
    args = parser.parse_args(argv)
    try:
        args.window = Window.parse(args.since, args.until, time.time())
        args.deadline_seconds = duration(args.deadline)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    from common.context import Context

    args = parse_args(argv)
    logs.install()
    summary = asyncio.run(run(Context(), args.window, args.deadline_seconds, args.check_sessions))
    severity = {"clean": "INFO", "repaired": "WARNING"}.get(summary.outcome, "ERROR")
    logs.write(severity, summary.text().splitlines()[0], **summary.fields())
    print(summary.text(), flush=True)
    return 0 if summary.outcome in ("clean", "repaired") else 1


if __name__ == "__main__":
    sys.exit(main())
