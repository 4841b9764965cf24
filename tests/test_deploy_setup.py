"""deploy/setup.sh: what it does on a new project, on a project already set up, and with the Stripe key.

Whether gcloud accepts each command is tests/test_deploy_gcloud.py's job.
Here the script's own decisions are checked by putting a recorder on PATH
in gcloud's place: it logs each call (arguments, and standard input where
gcloud would read a secret from it) and answers `describe` as a project
with nothing, or everything, already created would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cloudbuild import ROOT

SETUP = ROOT / "deploy" / "setup.sh"
STRIPE_KEY = "sk_test_" + "setupscriptkey0123456789"

RECORDER = """#!/bin/bash
stdin=
for arg in "$@"; do
  if [ "$arg" = --data-file=- ]; then stdin=$(cat); fi
done
"{python}" -c 'import json, sys; print(json.dumps({{"argv": sys.argv[2:], "stdin": sys.argv[1]}}))' \\
  "$stdin" "$@" >> "$GCLOUD_LOG"
case " $* " in
  *" describe "*) [ "$EXISTING" = everything ] ;;
  *" config get-value account "*) echo operator@example.com ;;
esac
"""


@pytest.fixture
def recorder(tmp_path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(RECORDER.format(python=sys.executable))
    gcloud.chmod(0o755)
    return bin_dir


def setup(recorder: Path, *args: str, existing: str = "nothing", stdin: str = "") -> tuple[subprocess.CompletedProcess, list]:
    log = recorder.parent / "gcloud.log"
    log.write_text("")
    env = {"PATH": f"{recorder}:/usr/bin:/bin", "GCLOUD_LOG": str(log), "EXISTING": existing, "HOME": str(recorder)}
    result = subprocess.run(["bash", str(SETUP), "--project=example-project", *args], input=stdin, env=env,
                            capture_output=True, text=True, timeout=60)
    return result, [json.loads(line) for line in log.read_text().splitlines()]


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
    assert creates(calls) == [
        "firestore databases create --database=(default)",
        "secrets create stripe-secret-key --replication-policy=automatic",
        "secrets create stripe-webhook-secret --replication-policy=automatic",
        "iam service-accounts create payments-runtime",
        "iam service-accounts create payments-deployer",
        "artifacts repositories create cloud-run-source-deploy",
    ]


def test_a_project_already_set_up_is_not_created_again_and_needs_no_key(recorder):
    result, calls = setup(recorder, existing="everything")
    assert result.returncode == 0, result.stderr
    assert creates(calls) == []
    # What is set rather than created is set again, harmlessly.
    assert any(call["argv"][:3] == ["firestore", "fields", "ttls"] for call in calls)


def test_the_stripe_key_goes_to_gcloud_on_standard_input_never_in_its_arguments(recorder):
    result, calls = setup(recorder, stdin=STRIPE_KEY + "\n")
    assert result.returncode == 0, result.stderr
    [create] = [call for call in calls if call["argv"][:3] == ["secrets", "create", "stripe-secret-key"]]
    assert create["stdin"] == STRIPE_KEY
    assert not [call for call in calls if any(STRIPE_KEY in arg for arg in call["argv"])]
    assert STRIPE_KEY not in result.stdout + result.stderr


def test_the_webhook_secret_starts_as_a_placeholder_until_stripe_shows_the_real_one(recorder):
    result, calls = setup(recorder, stdin=STRIPE_KEY + "\n")
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
    granted = sorted(" ".join(call["argv"][:3] + [arg for arg in call["argv"] if arg.startswith("--role=")])
                     for call in calls if member in call["argv"])
    assert granted == [
        "projects add-iam-policy-binding example-project --role=roles/datastore.user",
        "secrets add-iam-policy-binding stripe-secret-key --role=roles/secretmanager.secretAccessor",
        "secrets add-iam-policy-binding stripe-webhook-secret --role=roles/secretmanager.secretAccessor",
    ]


def test_the_operator_may_start_builds_as_the_deployer(recorder):
    _, calls = setup(recorder, existing="everything")
    deployer = "payments-deployer@example-project.iam.gserviceaccount.com"
    assert ["iam", "service-accounts", "add-iam-policy-binding", deployer, "--member=user:operator@example.com",
            "--role=roles/iam.serviceAccountUser", "--project=example-project", "--format=none"] in [
        call["argv"] for call in calls]


def test_events_expire_through_a_ttl_policy_on_their_expires_at_field(recorder):
    _, calls = setup(recorder, "--events-collection=processed_events", existing="everything")
    [ttl] = [call["argv"] for call in calls if call["argv"][:3] == ["firestore", "fields", "ttls"]]
    assert ttl[3:6] == ["update", "expires_at", "--collection-group=processed_events"]
    assert "--enable-ttl" in ttl


def test_a_trigger_needs_the_frontend_url_its_builds_deploy_with(recorder):
    result, calls = setup(recorder, "--trigger=example-owner/example-repo")
    assert result.returncode != 0
    assert "--frontend-url" in result.stderr
    assert calls == []


def test_the_trigger_deploys_with_the_names_chosen_here(recorder):
    result, calls = setup(recorder, "--trigger=example-owner/example-repo", "--frontend-url=https://shop.example.com",
                          "--stripe-key-secret=live-key", stdin=STRIPE_KEY + "\n")
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
