"""gcloud itself validates every command the deploy runs, offline.

The build config, every deploy step of cloudbuild.yaml (substitution
defaults filled in, its --flags-file and --env-vars-file rendered as the
build's test step renders them) and every command `deploy/setup.sh` runs
(from its --dry-run) go through the real gcloud with no credentials
(tests/support/gcloud.py). The only acceptable outcome is gcloud stopping
at "no active account": any parse or value error fails with gcloud's own
message. A command added to either file is validated without touching
this test.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support import cloudbuild, gcloud
from tests.support.cloudbuild import CONFIG, REQUIRED, ROOT, deploys, substitute, substitution_values

SETUP = ROOT / "deploy" / "setup.sh"
# Sample values for everything setup.sh can be told, so every command it has is printed.
SETUP_ARGS = ("--dry-run", f"--project={gcloud.PROJECT}", "--region=us-central1",
              "--trigger=example-owner/example-repo", "--frontend-url=https://shop.example.com")
TARGETS = ("functions", "run")


def setup_commands() -> list[list[str]]:
    """Every command setup.sh would run, from its --dry-run (one shell-quoted command per line)."""
    printed = subprocess.run(["bash", str(SETUP), *SETUP_ARGS], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    return [shlex.split(line) for line in printed.splitlines() if line.strip()]


def command_id(command: list[str]) -> str:
    """A short, readable name: the command's words up to the first flag."""
    words = []
    for word in command:
        if word.startswith("-"):
            break
        words.append(word)
    return " ".join(words)


def setup_cases() -> dict[str, list[str]]:
    cases = {}
    for n, command in enumerate(setup_commands(), start=1):
        cases[f"setup {n:02d}: {command_id(command)}"] = command
    return cases


@pytest.fixture(scope="module")
def deploy_workspace(tmp_path_factory) -> Path:
    """The build's working directory after the test step: .deploy/ rendered from the default substitutions."""
    workspace = tmp_path_factory.mktemp("workspace")
    cloudbuild.render_deploy_files(workspace / ".deploy", substitution_values(REQUIRED))
    return workspace


def deploy_step_runs(workspace: Path) -> dict[str, dict]:
    """Each deploy step as Cloud Build runs it (`bash -c GUARD gcloud …`), once per target."""
    runs = {}
    for target in TARGETS:
        values = substitution_values({**REQUIRED, "_TARGET": target})
        for deploy in deploys():
            args = [substitute(arg, values) for arg in deploy.step["args"]]
            runs[f"{deploy.id} (_TARGET={target})"] = {"command": ["bash", *args], "cwd": workspace}
    return runs


@pytest.fixture(scope="module")
def outcomes(deploy_workspace) -> dict[str, gcloud.Outcome]:
    """Every command, run once through the real gcloud, in parallel."""
    gcloud.require_gcloud()
    commands = {
        "build config": {"command": ["gcloud", "builds", "submit", "--no-source", f"--config={CONFIG}",
                                     f"--substitutions=_FRONTEND_URL={REQUIRED['_FRONTEND_URL']}"],
                         "cwd": ROOT},
        **deploy_step_runs(deploy_workspace),
        **{name: {"command": command, "cwd": ROOT} for name, command in setup_cases().items()},
    }
    return gcloud.run_all(commands)


def test_gcloud_accepts_the_build_config(outcomes):
    outcome = outcomes["build config"]
    assert outcome.stopped_at_no_account, outcome.explain()


@pytest.mark.parametrize("step_id", cloudbuild.deploy_ids())
def test_gcloud_accepts_each_deploy_step_under_the_target_that_runs_it(step_id, outcomes):
    ran = []
    for target in TARGETS:
        outcome = outcomes[f"{step_id} (_TARGET={target})"]
        if outcome.returncode == 0 and "Skipped" in outcome.stdout:
            continue
        assert outcome.stopped_at_no_account, outcome.explain()
        ran.append(target)
    assert len(ran) == 1, f"{step_id} deploys under {ran}"


def test_setup_script_prints_only_gcloud_commands():
    commands = setup_commands()
    assert commands and all(command[0] == "gcloud" for command in commands)


@pytest.mark.parametrize("name", list(setup_cases()))
def test_gcloud_accepts_each_setup_command(name, outcomes):
    outcome = outcomes[name]
    assert outcome.stopped_at_no_account, outcome.explain()


def test_a_flag_gcloud_does_not_know_is_caught():
    """The validation can fail: gcloud reports a bad value before asking for an account."""
    gcloud.require_gcloud()
    outcome = gcloud.run(["gcloud", "run", "deploy", "example", "--concurrency=abc"])
    assert not outcome.stopped_at_no_account
    assert "--concurrency" in outcome.stderr
