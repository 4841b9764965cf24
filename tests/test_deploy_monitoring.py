"""The log-based metrics and alert policies setup.sh creates, tried on the log lines the code really writes.

A metric counts what its filter matches, so a renamed log field would
silently stop an alert. Each filter from setup.sh's --dry-run is therefore
applied (tests/support/logfilter.py) to lines produced here by the app and
by the reconcile job, and must count exactly the lines it is named for.
Whether gcloud accepts the commands and the policy files is
tests/test_deploy_gcloud.py's job.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
import yaml

from common import settings
from common.context import Context
from payments import reconcile
from tests.conftest import ROOT, WEBHOOK_SECRET, signed_headers
from tests.support import logfilter
from tests.support.checkouts import new_session, paid_sessions
from tests.support.setup_script import dry_run_commands

SERVICE, JOB = "cloud_run_revision", "cloud_run_job"
POLICIES = sorted((ROOT / "deploy" / "monitoring").glob("*.yaml"))
RUNBOOK = ROOT / "docs" / "operations.md"
METRIC_TYPE = re.compile(r'metric\.type="logging\.googleapis\.com/user/([^"]+)"')


def metric_filters() -> dict[str, str]:
    """Each metric setup.sh creates, and its filter."""
    filters = {}
    for command in dry_run_commands():
        if command[1:4] == ["logging", "metrics", "create"]:
            flags = dict(arg.split("=", 1) for arg in command[5:] if arg.startswith("--"))
            filters[command[4]] = flags["--log-filter"]
    return filters


def counted(metric: str, lines: list[dict], resource_type: str) -> list[dict]:
    """The lines `metric` counts, had they been written by a resource of this type."""
    return [line for line in lines if logfilter.matches(metric_filters()[metric], logfilter.entry(line, resource_type))]


def deliver(client, event: dict, secret: str = WEBHOOK_SECRET, path: str = "/webhook"):
    payload = json.dumps(event)
    return client.post(path, content=payload, headers=signed_headers(payload, secret))


def reconcile_run(store_env: dict, standin, key: str | None = None, **window) -> reconcile.Summary:
    settings = {**store_env, "STRIPE_API_BASE": standin.base_url}
    if key:
        settings["STRIPE_SECRET_KEY"] = key
    return asyncio.run(
        reconcile.run(
            Context(settings),
            reconcile.Window.parse(window.get("since", "1h"), window.get("until"), time.time()),
            60,
            check_sessions=True,
        )
    )


# -- what each metric counts ---------------------------------------------------------


def test_webhook_5xx_counts_deliveries_the_webhook_failed(
    new_client, standin, session_id, tmp_path, monkeypatch, log_lines
):
    (event,) = standin.complete(session_id)
    log_lines()
    # Each instance reads its settings on its first request.
    statuses = [deliver(new_client(), event).status_code]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PAYMENTS_STORE", f"sqlite:///{blocker / 'payments.db'}")
    statuses.append(deliver(new_client(), event).status_code)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "not-a-signing-secret")
    statuses.append(deliver(new_client(), event).status_code)

    assert statuses == [200, 503, 500]
    webhook_lines = [line for line in log_lines() if line.get("endpoint") == "stripe_webhook"]
    assert [line["status"] for line in counted("payments_webhook_5xx", webhook_lines, SERVICE)] == [503, 500]


def test_signature_failures_count_refused_signatures_not_missing_ones(client, standin, session_id, log_lines):
    (event,) = standin.complete(session_id)
    log_lines()

    deliver(client, event)
    deliver(client, event, secret="whsec_" + "someoneelsessecret0123456789")
    client.post("/webhook", content=json.dumps(event))

    lines = log_lines()
    [refused] = counted("payments_webhook_signature_failures", lines, SERVICE)
    assert (refused["status"], refused["signature"]) == (400, "unverified")


def test_checkout_stripe_errors_count_creates_stripe_failed(client, standin, log_lines):
    log_lines()
    statuses = [client.post("/api/checkout/embedded-session", json={}).status_code]
    standin.fail_next(3, 500)  # the first try and the SDK's two retries
    statuses.append(client.post("/api/checkout/embedded-session", json={}).status_code)
    standin.fail_next(1, 429)
    statuses.append(client.post("/api/checkout/embedded-session", json={}).status_code)
    statuses.append(client.post("/api/checkout/embedded-session", json={"metadata": "no"}).status_code)

    assert statuses == [200, 502, 503, 400]
    errors = [line["error"] for line in counted("payments_checkout_stripe_errors", log_lines(), SERVICE)]
    assert errors == ["ProviderUnavailable", "ProviderBusy"]


def test_payments_recorded_counts_each_payment_once_whoever_records_it(client, env, standin, log_lines):
    by_card, by_debit, missed = new_session(standin), new_session(standin), new_session(standin)
    (card_event,) = standin.complete(by_card)
    (debit_completed,) = standin.complete(by_debit, payment_status="unpaid")
    (debit_settled,) = standin.async_payment(by_debit, True)
    (missed_event,) = standin.complete(missed)
    log_lines()

    for event in (card_event, card_event, debit_completed, debit_settled):  # a retried delivery, a delayed payment
        assert deliver(client, event).status_code == 200
    client.get("/api/checkout/session-status", params={"session_id": by_card})
    served = log_lines()
    assert reconcile_run({"PAYMENTS_STORE": env["PAYMENTS_STORE"]}, standin, env["STRIPE_SECRET_KEY"]).applied == 1
    from_job = log_lines()

    counted_ids = [line["event_id"] for line in counted("payments_recorded", served, SERVICE)]
    counted_ids += [line["event_id"] for line in counted("payments_recorded", from_job, JOB)]
    assert sorted(counted_ids) == sorted([card_event["id"], debit_settled["id"], missed_event["id"]])


@pytest.fixture
def command(standin, monkeypatch, capsys):
    """Run `python -m payments.reconcile` in this process with a store and key; returns its exit status."""

    def run(store: str, key: str = "sk_test_job", *args: str) -> int:
        for name in settings.NAMES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("PAYMENTS_STORE", store)
        monkeypatch.setenv("STRIPE_SECRET_KEY", key)
        monkeypatch.setenv("STRIPE_API_BASE", standin.base_url)
        return reconcile.main(["--check-sessions", *args])

    return run


def test_reconcile_metrics_count_missed_events_unrecorded_sessions_failed_runs_and_every_run(
    standin, tmp_path, command, log_lines
):
    store = f"sqlite:///{tmp_path / 'payments.db'}"
    paid_sessions(standin, 2)
    standin.advance_time(-2 * 3600)
    late = new_session(standin)
    standin.advance_time(2 * 3600)
    standin.complete(late)  # complete, but its event falls after the window of the last run
    log_lines()

    codes = [
        command(store),
        command(store),
        command(store, "placeholder"),
        command(f"sqlite:///{tmp_path / 'fresh.db'}", "sk_test_job", "--since", "3h", "--until", "30m"),
    ]

    lines = [line for line in log_lines() if "severity" in line]
    summaries = [line["outcome"] for line in lines if line.get("reconcile") == "summary"]
    assert (codes, summaries) == ([0, 0, 1, 1], ["repaired", "clean", "failed", "mismatch"])
    assert len(counted("payments_reconcile_missed_events", lines, JOB)) == 3
    assert [line["session_id"] for line in counted("payments_reconcile_unrecorded_sessions", lines, JOB)] == [late]
    assert [line["problem"] for line in counted("payments_reconcile_failures", lines, JOB)] == [
        "STRIPE_SECRET_KEY is not a Stripe secret key (sk_… or rk_…)"
    ]
    assert len(counted("payments_reconcile_runs", lines, JOB)) == 4
    assert counted("payments_reconcile_runs", lines, SERVICE) == []


# -- the alert policies ---------------------------------------------------------------


def policy(path) -> dict:
    return yaml.safe_load(path.read_text())


def watched(path) -> list[tuple[str, str]]:
    """(metric, resource type) of each condition of a policy."""
    found = []
    for condition in policy(path)["conditions"]:
        body = condition.get("conditionThreshold") or condition.get("conditionAbsent")
        [metric] = METRIC_TYPE.findall(body["filter"])
        [resource] = re.findall(r'resource\.type="([^"]+)"', body["filter"])
        found.append((metric, resource))
    return found


def test_every_alert_watches_a_metric_setup_creates_for_the_resource_that_writes_its_lines():
    filters = metric_filters()
    for path in POLICIES:
        for metric, resource in watched(path):
            assert metric in filters, f"{path.name} watches {metric}, which setup.sh does not create"
            assert f'"{resource}"' in filters[metric].split(" AND ")[0], f"{path.name}: {metric} on {resource}"


def test_every_metric_but_the_payments_counter_is_watched_by_an_alert():
    watched_metrics = {metric for path in POLICIES for metric, _ in watched(path)}
    assert set(metric_filters()) - watched_metrics == {"payments_recorded"}  # for dashboards


@pytest.mark.parametrize("path", POLICIES, ids=lambda path: path.name)
def test_every_alert_says_what_to_check_first_and_has_a_runbook_section(path):
    display_name = policy(path)["displayName"]
    assert display_name.startswith("Payments: ")
    title = display_name[len("Payments: ") :]
    title = title[0].upper() + title[1:]
    content = policy(path)["documentation"]["content"]

    assert "Check first:" in content
    assert f'docs/operations.md, "{title}"' in " ".join(content.split())
    assert f"\n### {title}\n" in RUNBOOK.read_text()


def test_the_filter_check_refuses_what_it_cannot_read_and_matches_exact_fields():
    line = logfilter.entry({"severity": "WARNING", "endpoint": "stripe_webhook", "status": 400}, SERVICE)

    assert logfilter.matches('jsonPayload.endpoint="stripe_webhook" AND jsonPayload.status=400', line)
    assert not logfilter.matches('jsonPayload.endpoint="stripe_webhook" AND jsonPayload.code=400', line)
    assert not logfilter.matches("severity>=ERROR", line)
    with pytest.raises(ValueError):
        logfilter.matches('jsonPayload.endpoint:"stripe"', line)
