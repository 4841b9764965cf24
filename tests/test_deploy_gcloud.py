"""gcloud itself validates every command the deploy runs, offline.

The build config, every gcloud step of cloudbuild.yaml (substitution
defaults filled in, its --flags-file and --env-vars-file rendered as the
build's test step renders them) and every command `deploy/setup.sh` runs
(from its --dry-run, plus the updates it runs instead of creates on a project
already set up) go through the real gcloud with no credentials
(tests/support/gcloud.py). The only acceptable outcome is gcloud stopping
at "no active account": any parse or value error fails with gcloud's own
message. A command added to either file is validated without touching
this test.

gcloud reads an alert policy file only once it has an account, so each file
in deploy/monitoring/ is also parsed by gcloud's own code for
`--policy-from-file`, with gcloud's Python, and must hold no field or value
the Monitoring API does not define.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import cloudbuild, gcloud
from tests.support.cloudbuild import CONFIG, REQUIRED, ROOT, deploys, gcloud_steps, substitute, substitution_values
from tests.support.setup_script import DRY_RUN_ARGS, dry_run_commands, install_recorder, run_setup

TARGETS = ("functions", "run")
setup_commands = dry_run_commands


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


def setup_update_cases(folder: Path) -> dict[str, list[str]]:
    """The commands setup.sh runs on a project already set up that its --dry-run (a new project) does not print."""
    printed = {tuple(command) for command in setup_commands()}
    _, calls = run_setup(
        install_recorder(folder),
        *DRY_RUN_ARGS[2:],
        f"--notification-channel=projects/{gcloud.PROJECT}/notificationChannels/42",
        existing="everything",
    )
    cases = {}
    for n, call in enumerate(calls, start=1):
        command = ["gcloud", *call["argv"]]
        if tuple(command) not in printed and "describe" not in command and "get-value" not in command:
            cases[f"setup, set up already {n:02d}: {command_id(command)}"] = command
    return cases


def gcloud_step_runs() -> dict[str, dict]:
    """Each step whose entrypoint is gcloud, as Cloud Build runs it under the default target."""
    values = substitution_values(REQUIRED)
    return {f"{step.id}": {"command": step.command(values)} for step in gcloud_steps()}


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
def update_cases(tmp_path_factory) -> dict[str, list[str]]:
    return setup_update_cases(tmp_path_factory.mktemp("recorder"))


@pytest.fixture(scope="module")
def outcomes(deploy_workspace, update_cases) -> dict[str, gcloud.Outcome]:
    """Every command, run once through the real gcloud, in parallel."""
    gcloud.require_gcloud()
    commands = {
        "build config": {
            "command": [
                "gcloud",
                "builds",
                "submit",
                "--no-source",
                f"--config={CONFIG}",
                f"--substitutions=_FRONTEND_URL={REQUIRED['_FRONTEND_URL']}",
            ],
            "cwd": ROOT,
        },
        **deploy_step_runs(deploy_workspace),
        **{name: {**run, "cwd": deploy_workspace} for name, run in gcloud_step_runs().items()},
        **{name: {"command": command, "cwd": ROOT} for name, command in setup_cases().items()},
        **{name: {"command": command, "cwd": ROOT} for name, command in update_cases.items()},
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


@pytest.mark.parametrize("step_id", cloudbuild.gcloud_step_ids())
def test_gcloud_accepts_each_gcloud_step(step_id, outcomes):
    outcome = outcomes[step_id]
    assert outcome.stopped_at_no_account, outcome.explain()


def test_every_step_after_the_tests_is_one_gcloud_validates():
    """Nothing the build runs escapes the validation above."""
    validated = {deploy.id for deploy in deploys()} | {step.id for step in gcloud_steps()}
    assert [step["id"] for step in cloudbuild.load()["steps"][1:] if step["id"] not in validated] == []


def test_setup_script_prints_only_gcloud_commands():
    commands = setup_commands()
    assert commands and all(command[0] == "gcloud" for command in commands)


@pytest.mark.parametrize("name", list(setup_cases()))
def test_gcloud_accepts_each_setup_command(name, outcomes):
    outcome = outcomes[name]
    assert outcome.stopped_at_no_account, outcome.explain()


def test_gcloud_accepts_each_command_setup_runs_on_a_project_already_set_up(update_cases, outcomes):
    assert update_cases, "a project already set up gets its metrics updated and its policies a channel"
    refused = [outcomes[name].explain() for name in update_cases if not outcomes[name].stopped_at_no_account]
    assert refused == []


@pytest.mark.parametrize("policy", sorted(p.name for p in (ROOT / "deploy" / "monitoring").glob("*.yaml")))
def test_gcloud_parses_each_alert_policy_file_with_nothing_the_api_does_not_define(policy):
    parsed = gcloud.parse_alert_policy(ROOT / "deploy" / "monitoring" / policy)
    assert parsed["error"] is None, parsed["error"]
    assert parsed["unknown"] == []


def test_the_alert_policy_check_can_fail(tmp_path):
    """A misspelt field and an unknown enum value are caught, as the Monitoring API would refuse them."""
    source = (ROOT / "deploy" / "monitoring" / "webhook-5xx.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(source.replace("thresholdValue:", "thresholdVal:").replace("combiner: OR", "combiner: MAYBE"))

    parsed = gcloud.parse_alert_policy(broken)

    assert sorted(parsed["unknown"]) == ["policy.combiner", "policy.conditions.conditionThreshold.thresholdVal"]


def test_a_flag_gcloud_does_not_know_is_caught():
    """The validation can fail: gcloud reports a bad value before asking for an account."""
    gcloud.require_gcloud()
    outcome = gcloud.run(["gcloud", "run", "deploy", "example", "--concurrency=abc"])
    assert not outcome.stopped_at_no_account
    assert "--concurrency" in outcome.stderr
