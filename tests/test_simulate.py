"""`devtools.simulate` against a live local stack: the stand-in, a served API and a SQLite store.

Each test creates a session through the API as the page does, plays
Stripe's part with the simulate functions (or its command line), and checks
what the webhook answered and what the store recorded.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys

import pytest
import requests

from devtools import simulate
from tests.conftest import local_env

ROOT = simulate.ROOT


@pytest.fixture
def config(stack):
    return simulate.load_config(stack.env_file)


def create_session(stack) -> str:
    """A new open session, created through the API the way the example page does."""
    response = requests.post(
        stack.api_url + "/api/checkout/embedded-session",
        json={},
        headers={"Idempotency-Key": os.urandom(8).hex()},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["client_secret"].split("_secret_")[0]


def test_pay_delivers_a_signed_completed_event_and_the_payment_is_recorded(stack, config):
    session_id = create_session(stack)

    report = simulate.pay(config, session_id)

    assert [(d.event_type, d.status_code) for d in report.deliveries] == [("checkout.session.completed", 200)]
    assert '"duplicate": false' in report.deliveries[0].body
    assert report.recorded["status"] == "complete"
    assert report.recorded["payment_status"] == "paid"
    assert report.recorded["amount_total"] == 200
    assert report.status == {"status": "complete", "payment_status": "paid", "outcome": "paid"}
    assert report.ok


def test_a_partial_refund_is_recorded_and_the_payment_stays_paid(stack, config):
    session_id = create_session(stack)
    simulate.pay(config, session_id)

    report = simulate.refund(config, session_id, amount=50)

    assert [(d.event_type, d.status_code) for d in report.deliveries] == [
        ("refund.created", 200),
        ("charge.refunded", 200),
    ]
    assert (report.recorded["amount_refunded"], report.recorded["outcome"]) == (50, "paid")
    assert report.status["outcome"] == "paid"


def test_a_full_refund_makes_the_page_show_refunded(stack, config):
    session_id = create_session(stack)
    simulate.pay(config, session_id)

    report = simulate.refund(config, session_id)

    assert (report.recorded["amount_refunded"], report.recorded["refunded"]) == (200, True)
    assert report.status == {"status": "complete", "payment_status": "paid", "outcome": "refunded"}


def test_a_lost_dispute_is_recorded_on_the_payment(stack, config):
    session_id = create_session(stack)
    simulate.pay(config, session_id)

    report = simulate.dispute(config, session_id, close="lost")

    assert [d.event_type for d in report.deliveries] == ["charge.dispute.created", "charge.dispute.closed"]
    assert report.ok
    assert report.recorded["dispute"]["status"] == "lost"
    assert report.recorded["outcome"] == "paid"


def test_the_events_command_lists_what_the_webhook_handles():
    result = subprocess.run(
        [sys.executable, "-m", "devtools.simulate", "events"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )

    from payments.events import HANDLED_EVENTS

    assert result.stdout.strip().split(",") == list(HANDLED_EVENTS)


def test_async_failure_leaves_the_payment_complete_unpaid_and_failed(stack, config):
    session_id = create_session(stack)

    report = simulate.pay(config, session_id, "async-fail")

    assert [(d.event_type, d.status_code) for d in report.deliveries] == [
        ("checkout.session.completed", 200),
        ("checkout.session.async_payment_failed", 200),
    ]
    assert (report.recorded["status"], report.recorded["payment_status"]) == ("complete", "unpaid")
    # Both events may carry the same second; the record then names either, by event id.
    assert report.recorded["last_event_id"] in {d.event_id for d in report.deliveries}
    assert report.status == {"status": "complete", "payment_status": "unpaid", "outcome": "failed"}
    assert report.recorded["outcome"] == "failed"


def test_async_success_records_the_payment_as_paid(stack, config):
    session_id = create_session(stack)

    report = simulate.pay(config, session_id, "async-succeed")

    assert [d.event_type for d in report.deliveries] == [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ]
    assert report.ok
    assert (report.recorded["status"], report.recorded["payment_status"]) == ("complete", "paid")


def test_expire_records_the_session_expired(stack, config):
    session_id = create_session(stack)

    report = simulate.expire(config, session_id)

    assert [(d.event_type, d.status_code) for d in report.deliveries] == [("checkout.session.expired", 200)]
    assert report.recorded["status"] == "expired"
    assert report.status == {"status": "expired", "payment_status": "unpaid", "outcome": "expired"}


def test_replay_is_accepted_as_a_duplicate_and_changes_nothing(stack, config):
    session_id = create_session(stack)
    first = simulate.pay(config, session_id)

    again = simulate.replay(config, first.deliveries[0].event_id)

    assert again.deliveries[0].status_code == 200
    assert '"duplicate": true' in again.deliveries[0].body
    assert again.recorded == first.recorded


def test_a_wrong_webhook_secret_is_refused_by_the_webhook(stack):
    config = simulate.load_config(stack.env_file, webhook_secret="whsec_" + "not_the_right_one")
    session_id = create_session(stack)

    report = simulate.pay(config, session_id)

    assert report.deliveries[0].status_code == 400
    assert "Stripe-Signature" in report.deliveries[0].body
    assert not report.ok
    assert report.recorded is None  # the webhook stored nothing (the store is read before the status endpoint)


def test_acting_on_a_session_that_is_not_open_says_why(stack, config):
    session_id = create_session(stack)
    simulate.expire(config, session_id)

    with pytest.raises(simulate.SimulationError, match="not open"):
        simulate.pay(config, session_id)


def test_command_line_pays_and_prints_the_answer_and_the_record(stack):
    session_id = create_session(stack)

    result = subprocess.run(
        [sys.executable, "-m", "devtools.simulate", "pay", "--env-file", str(stack.env_file), session_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert "checkout.session.completed" in result.stdout
    assert "webhook answered 200" in result.stdout
    assert "recorded: outcome=paid status=complete payment_status=paid" in result.stdout
    assert result.stdout.startswith("Session ")  # the report alone: no log lines of the store


def test_command_line_without_a_stand_in_points_to_the_stripe_cli(tmp_path):
    env = local_env()
    result = subprocess.run(
        [sys.executable, "-m", "devtools.simulate", "pay", "--env-file", str(tmp_path / "missing.env"), "cs_test_x"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 1
    assert "stripe listen --forward-to" in result.stderr


def test_latest_is_the_newest_open_session(stack, config):
    older, newer = create_session(stack), create_session(stack)
    latest = simulate.latest_open_session(config)

    assert latest == newer != older


def stored_event_ids(config) -> set[str]:
    path = config.store_env["PAYMENTS_STORE"][len("sqlite:///") :]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT event_id FROM stripe_events")}


def reconcile_as_documented(stack) -> subprocess.CompletedProcess:
    """`python -m payments.reconcile` with the running stack's settings, as the simulator's hint says."""
    script = f'set -a; . {shlex.quote(str(stack.env_file))}; exec "$0" -m payments.reconcile --since 1h'
    return subprocess.run(
        ["bash", "-c", script, sys.executable], cwd=ROOT, env=local_env(), capture_output=True, text=True, timeout=60
    )


def test_a_payment_whose_webhook_is_lost_is_shown_from_stripe_and_recorded_by_reconcile(stack, config):
    session_id = create_session(stack)

    report = simulate.pay(config, session_id, webhook=False)

    assert report.deliveries == []
    [event] = report.undelivered
    assert event["type"] == "checkout.session.completed"
    assert report.recorded is None  # no webhook: nothing recorded when the store is read
    assert report.status == {"status": "complete", "payment_status": "paid", "outcome": "paid"}  # asked of Stripe
    assert event["id"] not in stored_event_ids(config)
    assert "payments.reconcile" in simulate.format_report(report, config)

    repaired, again = reconcile_as_documented(stack), reconcile_as_documented(stack)

    assert repaired.returncode == 0, repaired.stderr
    recorded = [json.loads(line) for line in repaired.stdout.splitlines() if '"reconcile": "event"' in line]
    assert event["id"] in {line["event_id"] for line in recorded}
    assert event["id"] in stored_event_ids(config)
    assert again.returncode == 0, again.stderr
    assert "0 newly applied" in again.stdout


def test_command_line_no_webhook_delivers_nothing(stack):
    session_id = create_session(stack)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.simulate",
            "expire",
            "--no-webhook",
            "--env-file",
            str(stack.env_file),
            session_id,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert "checkout.session.expired" in result.stdout and "not delivered (--no-webhook)" in result.stdout
    assert "webhook answered" not in result.stdout
