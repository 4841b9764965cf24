"""The reconcile job as the build deploys it, and as setup.sh schedules it.

Whether gcloud accepts the commands is tests/test_deploy_gcloud.py's job.
Here: the job runs `python -m payments.reconcile` with exactly the arguments
and environment the build gives it (the stand-in and an SQLite file standing
in for Stripe and Firestore), gets only its own read-only Stripe key, and
Cloud Scheduler's account may run this job and nothing else, under the same
names setup.sh creates.
"""

from __future__ import annotations

import json
import subprocess
import sys

from payments.reconcile import duration
from tests.conftest import ROOT, local_env
from tests.support.checkouts import paid_sessions
from tests.support.cloudbuild import REQUIRED, gcloud_step_by_id, substitution_values
from tests.support.setup_script import PROJECT, dry_run_commands

JOB, BINDING = "deploy-reconcile-job", "allow-scheduler-to-run-reconcile"
TEST_KEY = "rk_test_" + "restrictedreconcilekey0123"
STORE_SETTINGS = {"PAYMENTS_STORE", "PAYMENTS_COLLECTION", "EVENTS_COLLECTION", "PAYMENT_INTENTS_COLLECTION"}


def values() -> dict:
    return substitution_values(REQUIRED)


def job_flag(name: str) -> str:
    return gcloud_step_by_id(JOB).flag(name, values())


def job_environment() -> dict:
    return dict(item.split("=", 1) for item in job_flag("set-env-vars").split(","))


def job_command() -> list[str]:
    """What the container runs once the launcher has set up Python: the words after `--`."""
    assert job_flag("command") == "/cnb/lifecycle/launcher"
    args = job_flag("args").split(",")
    assert args[0] == "--", "the launcher runs what follows `--` directly, without a shell"
    return args[1:]


def test_the_job_gets_only_its_own_stripe_key_and_the_store_settings():
    secrets = dict(item.split("=", 1) for item in job_flag("set-secrets").split(","))

    assert secrets == {"STRIPE_SECRET_KEY": f"{values()['_RECONCILE_KEY_SECRET']}:latest"}
    assert values()["_RECONCILE_KEY_SECRET"] not in (values()["_STRIPE_KEY_SECRET"], values()["_WEBHOOK_SECRET_SECRET"])
    assert set(job_environment()) == STORE_SETTINGS
    assert job_environment()["PAYMENTS_STORE"] == "firestore"
    assert job_flag("service-account") == values()["_RECONCILE_SA"]


def test_the_job_runs_reconcile_with_its_arguments_and_environment(standin, tmp_path):
    paid_sessions(standin, 2)
    standin.advance_time(-3600)  # older than the job's --until, so listed
    paid_sessions(standin, 1)
    standin.advance_time(3600)
    command = job_command()
    assert command[:3] == ["python", "-m", "payments.reconcile"]
    env = local_env(
        **{
            **job_environment(),
            "PAYMENTS_STORE": f"sqlite:///{tmp_path / 'payments.db'}",
            "STRIPE_SECRET_KEY": TEST_KEY,
            "STRIPE_API_BASE": standin.base_url,
        }
    )

    result = subprocess.run(
        [sys.executable, *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    [summary] = [json.loads(line) for line in result.stdout.splitlines() if '"reconcile": "summary"' in line]
    # The two newest payments are younger than --until=10m: left to their webhooks.
    assert (summary["seen"], summary["applied"], summary["outcome"]) == (1, 1, "repaired")
    assert summary["sessions_checked"] is not None  # --check-sessions


def test_a_run_ends_before_the_task_is_stopped_and_is_not_retried_at_once():
    deadline = next(arg for arg in job_command() if arg.startswith("--deadline="))
    assert duration(deadline.split("=", 1)[1]) < duration(job_flag("task-timeout"))
    assert job_flag("max-retries") == "0"


def test_only_the_scheduler_account_may_run_the_job():
    binding = gcloud_step_by_id(BINDING)
    command = binding.command(values())

    assert command[:5] == ["gcloud", "run", "jobs", "add-iam-policy-binding", values()["_RECONCILE_JOB"]]
    assert binding.flag("member", values()) == f"serviceAccount:{values()['_RECONCILE_INVOKER_SA']}"
    assert binding.flag("role", values()) == "roles/run.invoker"
    assert binding.flag("region", values()) == job_flag("region")
    assert binding.step["waitFor"] == [JOB]


def test_setup_schedules_the_job_the_build_deploys_with_the_accounts_the_build_names():
    commands = dry_run_commands()
    [scheduler] = [command for command in commands if command[1:4] == ["scheduler", "jobs", "create"]]
    flags = dict(arg.split("=", 1) for arg in scheduler if arg.startswith("--"))
    build = values()  # the build's defaults, in a project of the same id

    assert flags["--uri"] == (
        f"https://run.googleapis.com/v2/projects/{PROJECT}/locations/{flags['--location']}"
        f"/jobs/{build['_RECONCILE_JOB']}:run"
    )
    assert flags["--oauth-service-account-email"] == build["_RECONCILE_INVOKER_SA"]
    accounts = {
        f"{command[4]}@{PROJECT}.iam.gserviceaccount.com"
        for command in commands
        if command[1:4] == ["iam", "service-accounts", "create"]
    }
    assert {build["_RECONCILE_SA"], build["_RECONCILE_INVOKER_SA"]} <= accounts
    secrets = {command[3] for command in commands if command[1:3] == ["secrets", "create"]}
    assert build["_RECONCILE_KEY_SECRET"] in secrets
