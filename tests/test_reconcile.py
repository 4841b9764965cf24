"""payments.reconcile against the Stripe stand-in: the real SDK, real stores (SQLite and the Firestore emulator).

Payments are made at the stand-in without delivering their webhooks (or
delivering only some), then reconcile lists Stripe's events and applies
them through the webhook's own path. Every test that writes runs against
both stores.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from common.context import Context
from common.logs import REPORTED_ERROR
from common.stripe_api import StripeApi
from payments import events, reconcile
from tests.conftest import ROOT, TEST_KEY, local_env, signed_headers
from tests.support.checkouts import new_session, paid_sessions
from tests.support.firestore import unique_project_id

HOUR = 3600
IGNORED_FIELDS = ("updated_at", "paid_at")  # the time of a write, which differs between any two stores


# -- stores and runs ------------------------------------------------------------


@pytest.fixture(params=["sqlite", "firestore"])
def new_store(request, tmp_path):
    """Make the settings of a fresh, empty payment store of the kind under test."""
    if request.param == "firestore":
        request.getfixturevalue("firestore_project")  # points the Firestore client at the emulator
        emulator = os.environ["FIRESTORE_EMULATOR_HOST"]

        def firestore_store(name: str) -> dict:
            return {
                "PAYMENTS_STORE": "firestore",
                "GOOGLE_CLOUD_PROJECT": unique_project_id(name),
                "FIRESTORE_EMULATOR_HOST": emulator,
            }

        return firestore_store
    return lambda name: {"PAYMENTS_STORE": f"sqlite:///{tmp_path / name}.db"}


def settings(standin, store: dict, key: str = TEST_KEY) -> dict:
    """What the job is given: the Stripe key and the store's settings (and, here, the stand-in)."""
    return {"STRIPE_SECRET_KEY": key, "STRIPE_API_BASE": standin.base_url, **store}


def window(since: str = "1h", until: str | None = None) -> reconcile.Window:
    return reconcile.Window.parse(since, until, time.time())


def run(standin, store: dict, check_sessions: bool = False, deadline: float = 60, **window_args) -> reconcile.Summary:
    """One run, as the command runs it: a new context from the settings, closed at the end."""
    return asyncio.run(
        reconcile.run(Context(settings(standin, store)), window(**window_args), deadline, check_sessions)
    )


def run_with(stripe_api: StripeApi, store: dict, **options) -> reconcile.Summary:
    """One run through a given Stripe client, small pages and quick retries."""

    async def go():
        context = Context(store)
        try:
            return await reconcile.reconcile(
                stripe_api, context.store(), window(), page_size=2, first_backoff=0.01, **options
            )
        finally:
            await stripe_api.close()
            await context.close()

    return asyncio.run(go())


def records(store: dict, session_ids) -> dict:
    """Each session's payment record, without the times of writes."""

    async def read():
        context = Context(store)
        try:
            return {sid: await context.store().get_payment(sid) for sid in session_ids}
        finally:
            await context.close()

    found = asyncio.run(read())
    return {sid: _without_write_times(record) for sid, record in found.items()}


def _without_write_times(record: dict | None) -> dict | None:
    if record is None:
        return None
    kept = {k: v for k, v in record.items() if k not in IGNORED_FIELDS}
    kept["paid"] = bool(record.get("paid_at"))
    return kept


def stored_event_ids(store: dict) -> set[str]:
    if store["PAYMENTS_STORE"] == "firestore":
        from google.cloud import firestore

        client = firestore.Client(project=store["GOOGLE_CLOUD_PROJECT"])
        try:
            return {doc.id for doc in client.collection("stripe_events").stream()}
        finally:
            client.close()
    path = store["PAYMENTS_STORE"][len("sqlite:///") :]
    if not os.path.exists(path):
        return set()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT event_id FROM stripe_events")}


# -- payments at the stand-in -----------------------------------------------------


def every_kind_of_payment(standin) -> list[str]:
    """Sessions whose lives send every event type the webhook handles."""
    paid, refunded, disputed, settled, failed, expired = (new_session(standin) for _ in range(6))
    standin.complete(paid)
    standin.complete(refunded)
    standin.refund_payment(refunded, 50)
    standin.refund_payment(refunded)
    standin.complete(disputed)
    standin.open_dispute(disputed)
    standin.update_dispute(disputed)
    standin.close_dispute(disputed, won=False)
    standin.complete(settled, payment_status="unpaid")
    standin.async_payment(settled, True)
    standin.complete(failed, payment_status="unpaid")
    standin.async_payment(failed, False)
    standin.expire(expired)
    assert {event["type"] for event in standin.events} >= set(events.HANDLED_EVENTS)
    return [paid, refunded, disputed, settled, failed, expired]


def handled_event_ids(standin) -> set[str]:
    return {event["id"] for event in standin.events if event["type"] in events.HANDLED_EVENTS}


class FaultsAfterFirstPage(StripeApi):
    """The real client, which makes the stand-in fail the requests that follow its first page."""

    def __init__(self, standin, count: int, status: int, should_retry: bool | None = None):
        super().__init__(TEST_KEY, standin.base_url)
        self.standin, self.fault = standin, (count, status, should_retry)
        self.pages = 0

    async def list(self, path: str, params: dict) -> dict:
        page = await super().list(path, params)
        self.pages += 1
        if self.pages == 1:
            count, status, should_retry = self.fault
            self.standin.fail_next(count, status, should_retry=should_retry)
        return page


# -- events whose deliveries were lost ----------------------------------------------


def test_events_whose_deliveries_were_dropped_are_recorded(standin, new_store):
    sessions = paid_sessions(standin, 3)
    store = new_store("payments")

    summary = run(standin, store)

    assert (summary.seen, summary.applied, summary.duplicates, summary.failed) == (3, 3, 0, 0)
    assert summary.outcome == "repaired"
    assert stored_event_ids(store) == handled_event_ids(standin)
    for record in records(store, sessions).values():
        assert (record["status"], record["payment_status"], record["outcome"], record["paid"]) == (
            "complete",
            "paid",
            "paid",
            True,
        )


def test_a_second_run_changes_nothing(standin, new_store):
    sessions = every_kind_of_payment(standin)
    store = new_store("payments")
    first = run(standin, store)
    before = records(store, sessions)

    second = run(standin, store)

    assert first.applied == second.seen == second.duplicates > 0
    assert (second.applied, second.failed, second.outcome) == (0, 0, "clean")
    assert records(store, sessions) == before


def test_records_equal_what_the_webhook_produces_for_every_event_type(standin, new_store, new_client, monkeypatch):
    sessions = every_kind_of_payment(standin)
    by_webhook, by_reconcile = new_store("webhook"), new_store("reconcile")
    for name, value in by_webhook.items():
        monkeypatch.setenv(name, value)
    webhook = new_client("stripe_webhook")
    for event in standin.events:  # as Stripe delivers them, oldest first
        payload = json.dumps(event)
        assert webhook.post("/", content=payload, headers=signed_headers(payload)).status_code == 200

    summary = run(standin, by_reconcile)

    assert summary.applied == len(handled_event_ids(standin))
    assert records(by_reconcile, sessions) == records(by_webhook, sessions)
    assert stored_event_ids(by_reconcile) == stored_event_ids(by_webhook)


def test_only_the_events_the_webhook_missed_are_applied(standin, new_store, new_client, monkeypatch):
    delivered, missed = paid_sessions(standin, 2)
    store = new_store("payments")
    for name, value in store.items():
        monkeypatch.setenv(name, value)
    webhook = new_client("stripe_webhook")
    [event] = [e for e in standin.events if e["data"]["object"]["id"] == delivered]
    payload = json.dumps(event)
    webhook.post("/", content=payload, headers=signed_headers(payload))

    summary = run(standin, store)

    assert (summary.seen, summary.applied, summary.duplicates) == (2, 1, 1)
    assert records(store, [missed])[missed]["outcome"] == "paid"


# -- Stripe busy or failing ------------------------------------------------------------


def test_a_rate_limit_mid_run_is_waited_out(standin, new_store, log_lines):
    paid_sessions(standin, 5)
    store = new_store("payments")
    log_lines()

    summary = run_with(FaultsAfterFirstPage(standin, 2, 429), store)

    assert (summary.applied, summary.outcome, summary.problem) == (5, "repaired", None)
    retries = [line for line in log_lines() if line.get("reconcile") == "retry"]
    assert [line["error"] for line in retries] == ["ProviderBusy", "ProviderBusy"]


def test_a_server_error_mid_run_is_retried(standin, new_store):
    paid_sessions(standin, 5)
    store = new_store("payments")

    summary = run_with(FaultsAfterFirstPage(standin, 1, 500), store)

    assert (summary.applied, summary.outcome) == (5, "repaired")
    assert stored_event_ids(store) == handled_event_ids(standin)


def test_stripe_failing_mid_run_keeps_whole_events_and_a_rerun_completes(standin, new_store, log_lines):
    paid_sessions(standin, 5)
    store = new_store("payments")
    newest_two = {event["id"] for event in standin.events[-2:]}
    log_lines()

    failed = run_with(FaultsAfterFirstPage(standin, reconcile.PAGE_ATTEMPTS, 500, should_retry=False), store)

    assert failed.outcome == "failed" and "Stripe failed to list" in failed.problem
    assert (failed.seen, failed.applied) == (2, 2)
    assert stored_event_ids(store) == newest_two
    [report] = [line for line in log_lines() if line.get("@type") == REPORTED_ERROR]
    assert report["reconcile"] == "run" and "Traceback (most recent call last)" in report["message"]

    again = run(standin, store)

    assert (again.seen, again.applied, again.duplicates, again.outcome) == (5, 3, 2, "repaired")
    assert stored_event_ids(store) == handled_event_ids(standin)


def test_a_store_that_cannot_open_fails_the_run_and_is_reported(standin, tmp_path, log_lines):
    paid_sessions(standin, 1)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    log_lines()

    summary = run(standin, {"PAYMENTS_STORE": f"sqlite:///{blocker / 'payments.db'}"})

    assert summary.outcome == "failed" and "payment store" in summary.problem
    assert summary.seen == 0
    assert [line["reconcile"] for line in log_lines() if line.get("@type") == REPORTED_ERROR] == ["run"]


def test_the_deadline_stops_a_run_and_says_so(standin, new_store):
    paid_sessions(standin, 1)
    standin.latency = 2.0

    started = time.monotonic()
    summary = run(standin, new_store("payments"), deadline=0.5)

    assert time.monotonic() - started < 2
    assert summary.outcome == "failed" and "deadline" in summary.problem


# -- the window ----------------------------------------------------------------------


def test_since_bounds_what_is_listed(standin, new_store):
    standin.advance_time(-3 * HOUR)
    older = paid_sessions(standin, 2)
    standin.advance_time(3 * HOUR)
    newer = paid_sessions(standin, 1)
    store = new_store("payments")

    summary = run(standin, store, since="2h")

    assert (summary.seen, summary.applied) == (1, 1)
    found = records(store, older + newer)
    assert [found[sid] is not None for sid in older + newer] == [False, False, True]
    assert run(standin, store, since="4h").applied == 2


def test_until_leaves_the_newest_events_to_the_webhook(standin, new_store):
    standin.advance_time(-HOUR)
    paid_sessions(standin, 1)
    standin.advance_time(HOUR)
    paid_sessions(standin, 1)

    summary = run(standin, new_store("payments"), since="2h", until="30m")

    assert (summary.seen, summary.applied) == (1, 1)
    assert summary.window.until <= time.time() - 30 * 60


@pytest.mark.parametrize("text, seconds_ago", [("90s", 90), ("90m", 5400), ("72h", 259200), ("3d", 259200)])
def test_since_takes_a_duration_back_from_now(text, seconds_ago):
    assert reconcile.moment(text, 1_800_000_000.5) == 1_800_000_000 - seconds_ago


def test_since_takes_an_iso_time_in_utc_unless_it_names_its_offset():
    assert reconcile.moment("2026-07-01T09:00:00Z", 0) == 1782896400
    assert reconcile.moment("2026-07-01T09:00:00", 0) == 1782896400
    assert reconcile.moment("2026-07-01T11:00:00+02:00", 0) == 1782896400


@pytest.mark.parametrize(
    "since, until, problem",
    [
        ("31d", None, "30 days"),
        ("yesterday", None, "neither a duration"),
        ("1h", "2h", "before --until"),
    ],
)
def test_a_window_stripe_cannot_answer_is_refused(since, until, problem):
    with pytest.raises(ValueError, match=problem):
        reconcile.Window.parse(since, until, time.time())


# -- completed sessions without a record ------------------------------------------------


def test_a_completed_session_without_a_record_is_reported_and_not_written(standin, new_store, log_lines):
    standin.advance_time(-2 * HOUR)
    late = new_session(standin)  # created two hours ago, paid just now: its event falls after --until
    standin.advance_time(2 * HOUR)
    standin.complete(late)
    store = new_store("payments")
    log_lines()

    summary = run(standin, store, check_sessions=True, since="3h", until="30m")

    assert (summary.seen, summary.sessions_checked, summary.unrecorded_sessions) == (0, 1, [late])
    assert summary.outcome == "mismatch"
    [line] = [line for line in log_lines() if line.get("reconcile") == "session"]
    assert line["session_id"] == late and line["severity"] == "WARNING"
    assert records(store, [late])[late] is None  # reported only: the check writes nothing


def test_the_session_check_is_clean_when_every_completed_session_is_recorded(standin, new_store):
    paid_sessions(standin, 3)
    expired = new_session(standin)
    standin.expire(expired)

    summary = run(standin, new_store("payments"), check_sessions=True)

    assert (summary.sessions_checked, summary.unrecorded_sessions, summary.outcome) == (3, [], "repaired")


# -- the command line ---------------------------------------------------------------------


def reconcile_command(standin, store: dict, *args: str) -> subprocess.CompletedProcess:
    env = local_env(**settings(standin, store))
    return subprocess.run(
        [sys.executable, "-m", "payments.reconcile", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def summary_line(result: subprocess.CompletedProcess) -> dict:
    lines = [json.loads(line) for line in (result.stdout + result.stderr).splitlines() if line.startswith("{")]
    [summary] = [line for line in lines if line.get("reconcile") == "summary"]
    return summary


def test_the_command_records_missed_events_then_reports_none_new(standin, tmp_path):
    paid_sessions(standin, 2)
    store = {"PAYMENTS_STORE": f"sqlite:///{tmp_path / 'payments.db'}"}

    first = reconcile_command(standin, store, "--since", "1h", "--check-sessions")
    second = reconcile_command(standin, store, "--since", "1h")

    assert first.returncode == 0, first.stderr
    assert summary_line(first)["applied"] == 2 and summary_line(first)["severity"] == "WARNING"
    assert "2 newly applied" in first.stdout and "Outcome: repaired." in first.stdout
    assert second.returncode == 0, second.stderr
    assert {k: summary_line(second)[k] for k in ("outcome", "seen", "applied", "duplicates", "failed")} == {
        "outcome": "clean",
        "seen": 2,
        "applied": 0,
        "duplicates": 2,
        "failed": 0,
    }
    assert "0 newly applied" in second.stdout


def test_the_command_fails_when_the_key_is_only_a_placeholder(standin, tmp_path):
    store = {"PAYMENTS_STORE": f"sqlite:///{tmp_path / 'payments.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "payments.reconcile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=local_env(**settings(standin, store, key="rk_placeholder")),
        timeout=60,
    )

    assert result.returncode == 1
    summary = summary_line(result)
    assert summary["outcome"] == "failed" and summary["severity"] == "ERROR"
    assert "STRIPE_SECRET_KEY" in summary["problem"]
    reports = [json.loads(line) for line in result.stderr.splitlines() if REPORTED_ERROR in line]
    assert reports and "STRIPE_SECRET_KEY" in reports[0]["message"]
    assert "rk_placeholder" not in result.stdout + result.stderr


def test_the_command_refuses_a_window_older_than_stripe_keeps_events(standin, tmp_path):
    result = reconcile_command(standin, {"PAYMENTS_STORE": f"sqlite:///{tmp_path / 'p.db'}"}, "--since", "40d")

    assert result.returncode == 2
    assert "30 days" in result.stderr
