"""deploy/setup.sh: what it does on a new project, on a project already set up, and with the Stripe key.

Whether gcloud accepts each command is tests/test_deploy_gcloud.py's job.
Here the script's own decisions are checked by putting a recorder on PATH
in gcloud's place (tests/support/setup_script.py): it logs each call and
answers look-ups as a project with nothing, or everything, already created
would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from common.errors import SettingError
from common.secrets import stripe_secret_key
from tests.support.cloudbuild import ROOT
from tests.support.setup_script import install_recorder, run_setup

STRIPE_KEY = "sk_test_" + "setupscriptkey0123456789"
POLICY_FILES = sorted((ROOT / "deploy" / "monitoring").glob("*.yaml"))
METRICS = (
    "payments_webhook_5xx",
    "payments_webhook_signature_failures",
    "payments_checkout_stripe_errors",
    "payments_recorded",
    "payments_reconcile_missed_events",
    "payments_reconcile_unrecorded_sessions",
    "payments_reconcile_failures",
    "payments_reconcile_runs",
)
CHANNEL = "projects/example-project/notificationChannels/4242"


@pytest.fixture
def recorder(tmp_path) -> Path:
    return install_recorder(tmp_path)


def setup(
    recorder: Path, *args: str, existing: str = "nothing", stdin: str = ""
) -> tuple[subprocess.CompletedProcess, list]:
    return run_setup(recorder, *args, existing=existing, stdin=stdin)


def creates(calls: list) -> list[str]:
    """What was created, as "group create NAME"."""
    return [" ".join(call["argv"][:4]) for call in calls if "create" in call["argv"][:4]]


def test_dry_run_runs_nothing(recorder):
    result, calls = setup(recorder, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert calls == []
    assert result.stdout.splitlines() and all(line.startswith("gcloud ") for line in result.stdout.splitlines())


def test_a_new_project_gets_the_database_secrets_accounts_and_repository(recorder):
    result, calls = setup(recorder, stdin=STRIPE_KEY + "\n")
    assert result.returncode == 0, result.stderr
    assert [line for line in creates(calls) if not line.startswith(("logging", "alpha"))] == [
        "firestore databases create --database=(default)",
        "secrets create stripe-secret-key --replication-policy=automatic",
        "secrets create stripe-webhook-secret --replication-policy=automatic",
        "secrets create stripe-reconcile-key --replication-policy=automatic",
        "iam service-accounts create payments-runtime",
        "iam service-accounts create payments-reconcile",
        "iam service-accounts create payments-scheduler",
        "iam service-accounts create payments-deployer",
        "artifacts repositories create cloud-run-source-deploy",
        "scheduler jobs create http",
    ]


def test_a_project_already_set_up_is_not_created_again_and_needs_no_key(recorder):
    result, calls = setup(recorder, existing="everything")
    assert result.returncode == 0, result.stderr
    assert creates(calls) == []
    # What is set rather than created is set again, harmlessly.
    assert any(call["argv"][:3] == ["firestore", "fields", "ttls"] for call in calls)
    assert len([call for call in calls if call["argv"][:3] == ["logging", "metrics", "update"]]) == len(METRICS)


def test_the_stripe_key_goes_to_gcloud_on_standard_input_never_in_its_arguments(recorder):
    result, calls = setup(recorder, stdin=STRIPE_KEY + "\n")
    assert result.returncode == 0, result.stderr
    [create] = [call for call in calls if call["argv"][:3] == ["secrets", "create", "stripe-secret-key"]]
    assert create["stdin"] == STRIPE_KEY
    assert not [call for call in calls if any(STRIPE_KEY in arg for arg in call["argv"])]
    assert STRIPE_KEY not in result.stdout + result.stderr


def test_the_webhook_secret_starts_as_a_placeholder_until_stripe_shows_the_real_one(recorder):
    _result, calls = setup(recorder, stdin=STRIPE_KEY + "\n")
    [create] = [call for call in calls if call["argv"][:3] == ["secrets", "create", "stripe-webhook-secret"]]
    assert create["stdin"].startswith("whsec_")


def test_something_that_is_not_a_stripe_secret_key_is_refused_before_it_is_stored(recorder):
    result, calls = setup(recorder, stdin="pk_test_publishable\n")
    assert result.returncode != 0
    assert "not a Stripe secret key" in result.stderr
    assert not [call for call in calls if call["argv"][:2] == ["secrets", "create"]]


def test_the_runtime_account_reads_only_the_two_secrets_and_firestore(recorder):
    _, calls = setup(recorder, existing="everything")
    member = "--member=serviceAccount:payments-runtime@example-project.iam.gserviceaccount.com"
    granted = sorted(
        " ".join(call["argv"][:3] + [arg for arg in call["argv"] if arg.startswith("--role=")])
        for call in calls
        if member in call["argv"]
    )
    assert granted == [
        "projects add-iam-policy-binding example-project --role=roles/datastore.user",
        "secrets add-iam-policy-binding stripe-secret-key --role=roles/secretmanager.secretAccessor",
        "secrets add-iam-policy-binding stripe-webhook-secret --role=roles/secretmanager.secretAccessor",
    ]


def test_the_operator_may_start_builds_as_the_deployer(recorder):
    _, calls = setup(recorder, existing="everything")
    deployer = "payments-deployer@example-project.iam.gserviceaccount.com"
    assert [
        "iam",
        "service-accounts",
        "add-iam-policy-binding",
        deployer,
        "--member=user:operator@example.com",
        "--role=roles/iam.serviceAccountUser",
        "--project=example-project",
        "--format=none",
    ] in [call["argv"] for call in calls]


def test_events_expire_through_a_ttl_policy_on_their_expires_at_field(recorder):
    _, calls = setup(recorder, "--events-collection=processed_events", existing="everything")
    ttls = [call["argv"] for call in calls if call["argv"][:3] == ["firestore", "fields", "ttls"]]
    [ttl] = [argv for argv in ttls if "--collection-group=processed_events" in argv]
    assert ttl[3:6] == ["update", "expires_at", "--collection-group=processed_events"]
    assert "--enable-ttl" in ttl


def test_rate_limit_counts_expire_and_are_not_indexed(recorder):
    _, calls = setup(recorder, "--rate-limit-collection=counts", existing="everything")
    fields = [
        call["argv"]
        for call in calls
        if call["argv"][:2] == ["firestore", "fields"] and "--collection-group=counts" in call["argv"]
    ]
    indexes = [call["argv"] for call in calls if call["argv"][:3] == ["firestore", "indexes", "fields"]]

    assert [argv[3:5] for argv in fields] == [["update", "expires_at"]] and "--enable-ttl" in fields[0]
    assert sorted(argv[4] for argv in indexes if "--collection-group=counts" in argv) == ["count", "expires_at"]
    assert all("--disable-indexes" in argv for argv in indexes)


def test_a_trigger_needs_the_frontend_url_its_builds_deploy_with(recorder):
    result, calls = setup(recorder, "--trigger=example-owner/example-repo")
    assert result.returncode != 0
    assert "--frontend-url" in result.stderr
    assert calls == []


def test_the_trigger_deploys_with_the_names_chosen_here(recorder):
    result, calls = setup(
        recorder,
        "--trigger=example-owner/example-repo",
        "--frontend-url=https://shop.example.com",
        "--stripe-key-secret=live-key",
        stdin=STRIPE_KEY + "\n",
    )
    assert result.returncode == 0, result.stderr
    [create] = [call["argv"] for call in calls if call["argv"][:3] == ["builds", "triggers", "create"]]
    assert "--repo-owner=example-owner" in create and "--repo-name=example-repo" in create
    substitutions = next(arg for arg in create if arg.startswith("--substitutions="))
    assert "_FRONTEND_URL=https://shop.example.com" in substitutions
    assert "_STRIPE_KEY_SECRET=live-key" in substitutions


def test_an_unknown_option_is_refused_before_anything_runs(recorder):
    result, calls = setup(recorder, "--regoin=europe-west1")
    assert result.returncode != 0
    assert "unknown option --regoin" in result.stderr
    assert calls == []


# --------------------------------------------------------------------------
# The reconcile job, its schedule, the metrics and the alerts


def granted(calls: list, member: str) -> list[str]:
    return sorted(
        " ".join(call["argv"][:3] + [arg for arg in call["argv"] if arg.startswith("--role=")])
        for call in calls
        if f"--member={member}" in call["argv"]
    )


def test_the_reconcile_account_reads_only_its_own_key_and_firestore(recorder):
    _, calls = setup(recorder, existing="everything")
    assert granted(calls, "serviceAccount:payments-reconcile@example-project.iam.gserviceaccount.com") == [
        "projects add-iam-policy-binding example-project --role=roles/datastore.user",
        "secrets add-iam-policy-binding stripe-reconcile-key --role=roles/secretmanager.secretAccessor",
    ]


def test_the_scheduler_account_gets_no_role_here_only_the_build_lets_it_run_the_job(recorder):
    _, calls = setup(recorder, existing="everything")
    assert granted(calls, "serviceAccount:payments-scheduler@example-project.iam.gserviceaccount.com") == []


def test_the_deployer_may_deploy_the_job_as_the_reconcile_account(recorder):
    _, calls = setup(recorder, existing="everything")
    reconcile = "payments-reconcile@example-project.iam.gserviceaccount.com"
    assert [
        "iam",
        "service-accounts",
        "add-iam-policy-binding",
        reconcile,
        "--member=serviceAccount:payments-deployer@example-project.iam.gserviceaccount.com",
        "--role=roles/iam.serviceAccountUser",
        "--project=example-project",
        "--format=none",
    ] in [call["argv"] for call in calls]


def test_the_reconcile_key_starts_as_a_placeholder_the_job_refuses_by_name(recorder):
    _, calls = setup(recorder, stdin=STRIPE_KEY + "\n")
    [create] = [call for call in calls if call["argv"][:3] == ["secrets", "create", "stripe-reconcile-key"]]
    with pytest.raises(SettingError) as refused:
        stripe_secret_key(create["stdin"])
    assert refused.value.name == "STRIPE_SECRET_KEY"


def test_cloud_scheduler_runs_the_job_hourly_as_the_scheduler_account(recorder):
    _, calls = setup(recorder, "--region=europe-west1", stdin=STRIPE_KEY + "\n")
    [create] = [call["argv"] for call in calls if call["argv"][:4] == ["scheduler", "jobs", "create", "http"]]
    assert create[4] == "payments-reconcile"
    assert {
        "--location=europe-west1",
        "--schedule=7 * * * *",
        "--http-method=POST",
        "--time-zone=Etc/UTC",
        "--uri=https://run.googleapis.com/v2/projects/example-project/locations/europe-west1/jobs/"
        "payments-reconcile:run",
        "--oauth-service-account-email=payments-scheduler@example-project.iam.gserviceaccount.com",
    } <= set(create)


def test_every_log_based_metric_is_created_on_a_new_project(recorder):
    _, calls = setup(recorder, stdin=STRIPE_KEY + "\n")
    created = [call["argv"][3] for call in calls if call["argv"][:3] == ["logging", "metrics", "create"]]
    assert created == list(METRICS)


def test_every_alert_policy_file_is_created_with_the_notification_channel(recorder):
    _, calls = setup(recorder, f"--notification-channel={CHANNEL}", stdin=STRIPE_KEY + "\n")
    created = [call["argv"] for call in calls if call["argv"][:4] == ["alpha", "monitoring", "policies", "create"]]
    assert [
        next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--policy-from-file=")) for argv in created
    ] == [f"{ROOT}/deploy/monitoring/{path.name}" for path in POLICY_FILES]
    assert all(f"--notification-channels={CHANNEL}" in argv for argv in created)


def test_existing_alert_policies_are_left_as_they_are_but_get_a_new_channel(recorder):
    _, quiet = setup(recorder, existing="everything")
    _, told = setup(recorder, f"--notification-channel={CHANNEL}", existing="everything")

    assert not [
        call for call in quiet if call["argv"][:3] == ["alpha", "monitoring", "policies"] and call["argv"][3] != "list"
    ]
    updates = [call["argv"] for call in told if call["argv"][:4] == ["alpha", "monitoring", "policies", "update"]]
    assert len(updates) == len(POLICY_FILES)
    assert all(f"--add-notification-channels={CHANNEL}" in argv for argv in updates)


def test_the_build_command_names_the_reconcile_job_accounts_and_secret(recorder):
    result, _ = setup(recorder, "--reconcile-key-secret=live-reconcile-key", existing="everything")
    assert "_RECONCILE_JOB=payments-reconcile" in result.stderr
    assert "_RECONCILE_SA=payments-reconcile@example-project.iam.gserviceaccount.com" in result.stderr
    assert "_RECONCILE_KEY_SECRET=live-reconcile-key" in result.stderr
    assert "_RECONCILE_INVOKER_SA=payments-scheduler@example-project.iam.gserviceaccount.com" in result.stderr
