"""What the deploy configuration promises, checked against the code it deploys.

Whether gcloud accepts the commands is gcloud's to say
(tests/test_deploy_gcloud.py); what each deploy's environment serves is in
tests/test_deploy_environments.py. Here: tests run before any deploy, and
with every tool they need; `_TARGET` chooses the deploys; one deploy per
entry point, on the Python the tests ran on; each function gets only the
secrets it uses.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from functions_framework import _function_registry, create_app

from deploy import render
from tests.conftest import MAIN
from tests.support.cloudbuild import (
    REQUIRED,
    build_test_step,
    deploys,
    load,
    step_env,
    substitute,
    substitution_values,
    used_names,
)

# The tools the suite needs, so the build runs every test instead of skipping some (CI=true).
TEST_TOOLS = {
    "google-cloud-cli",
    "google-cloud-cli-firestore-emulator",
    "default-jre-headless",
    "nodejs",
    "npm",
    "chromium",
    "chromium-driver",
}


def http_functions_in_main() -> set[str]:
    """Functions main.py registers with @functions_framework.aio.http."""
    tree = ast.parse(Path(MAIN).read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.AsyncFunctionDef)
        and any(ast.unparse(decorator) == "functions_framework.aio.http" for decorator in node.decorator_list)
    }


def shared_flags() -> dict:
    return yaml.safe_load((render.HERE / render.FLAGS).read_text())


# --------------------------------------------------------------------------
# Tests before deploys


def test_the_test_step_comes_first_and_every_other_step_waits_for_it():
    steps = load()["steps"]
    assert steps[0]["id"] == "test"
    assert deploys() and all(deploy.step.get("waitFor") == ["test"] for deploy in deploys())
    # Every later step waits for the tests, or for a step that does (Cloud Build
    # would otherwise start it at once, in parallel with them).
    after_tests = {"test"}
    for step in steps[1:]:
        assert step.get("waitFor") and set(step["waitFor"]) <= after_tests, step["id"]
        after_tests.add(step["id"])


def run_test_step(workdir: Path, overrides: dict) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the test step's script with every command it would run replaced by a stub that logs it.

    PATH is empty, so a command without a stub fails instead of touching this machine.
    """
    values = substitution_values(overrides)
    script = substitute(build_test_step()["args"][1], values)
    log = workdir.parent / "commands.log"
    log.write_text("")
    stubs = "".join(
        f'{name}() {{ echo "{name} $* (CI=${{CI:-}})" >> "$COMMAND_LOG"; }}\n'
        for name in ("curl", "gpg", "apt-get", "make", ".venv/bin/python")
    )
    # tee writes the apt source: log what it was given.
    stubs += 'tee() { local input; IFS= read -r input; echo "tee $* < $input" >> "$COMMAND_LOG"; }\n'
    env = {**step_env(build_test_step(), values), "PATH": "", "COMMAND_LOG": str(log)}
    result = subprocess.run(
        ["/bin/bash", "-c", stubs + script], cwd=workdir, env=env, capture_output=True, text=True, timeout=60
    )
    return result, log.read_text().splitlines()


@pytest.fixture
def upload(tmp_path) -> Path:
    """A build's working directory as `gcloud builds submit --ignore-file=.gcloudignore.build` uploads it."""
    workdir = tmp_path / "workspace"
    (workdir / "tests").mkdir(parents=True)
    return workdir


def test_the_test_step_installs_every_test_tool_then_runs_make_test_under_ci(upload):
    result, commands = run_test_step(upload, REQUIRED)
    assert result.returncode == 0, result.stderr
    installs = [set(line.split()) for line in commands if line.startswith("apt-get install")]
    assert installs and installs[-1] >= TEST_TOOLS
    google_repository = [line for line in commands if line.startswith("tee ")]
    assert google_repository and "https://packages.cloud.google.com/apt cloud-sdk main" in google_repository[0]
    assert commands[-1] == "make test (CI=true)"


def test_the_test_step_writes_the_deploy_files_before_the_tests_run(upload):
    result, commands = run_test_step(upload, REQUIRED)
    assert result.returncode == 0, result.stderr
    assert commands[-3:] == [
        "make setup (CI=true)",
        ".venv/bin/python -m deploy.render .deploy (CI=true)",
        "make test (CI=true)",
    ]
    # The deploy steps read what it writes.
    assert {deploy.flag("flags-file") for deploy in deploys()} == {f".deploy/{render.FLAGS}"}


def test_the_test_step_refuses_the_placeholder_frontend_url(upload):
    result, commands = run_test_step(upload, {})
    assert result.returncode != 0
    assert "_FRONTEND_URL" in result.stderr
    assert commands == []


def test_the_test_step_refuses_an_unknown_target(upload):
    result, commands = run_test_step(upload, {**REQUIRED, "_TARGET": "function"})
    assert result.returncode != 0
    assert "_TARGET" in result.stderr
    assert commands == []


def test_the_test_step_refuses_an_upload_without_the_tests(upload):
    (upload / "tests").rmdir()
    result, commands = run_test_step(upload, REQUIRED)
    assert result.returncode != 0
    assert "--ignore-file=.gcloudignore.build" in result.stderr
    assert commands == []


# --------------------------------------------------------------------------
# What is deployed


@pytest.mark.parametrize("target", ["functions", "run"])
def test_target_chooses_which_deploys_run(target):
    values = substitution_values({**REQUIRED, "_TARGET": target})
    ran = set()
    for deploy in deploys():
        command = [substitute(arg, values) for arg in deploy.command]
        # `echo` in place of gcloud: the guard runs "$0" "$@", so the command is printed.
        result = subprocess.run(
            ["bash", "-c", substitute(deploy.guard, values), "echo", *command[1:]],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        if result.stdout.strip() == " ".join(command[1:]):
            ran.add(deploy.entry_point)
        else:
            assert "Skipped" in result.stdout, result.stdout
    expected = http_functions_in_main() - {"api"} if target == "functions" else {"api"}
    assert ran == expected


def test_every_entry_point_deployed_is_an_http_function_in_main():
    for deploy in deploys():
        create_app(deploy.entry_point, MAIN)  # loads main.py as the runtime does
        assert _function_registry.REGISTRY_MAP.get(deploy.entry_point) == "http", deploy.id


def test_each_deploy_reads_the_environment_file_of_its_entry_point():
    assert sorted(deploy.env_file() for deploy in deploys()) == [
        name for name in render.templates() if name != render.FLAGS
    ]
    for deploy in deploys():
        assert deploy.env_file() == f"{render.ENV_DIR}/{deploy.entry_point}.yaml"


def test_functions_run_on_the_python_the_tests_ran_on():
    match = re.fullmatch(r"python:(\d+)\.(\d+)(-[a-z0-9.-]+)?", build_test_step()["name"])
    assert match, f"test step image {build_test_step()['name']} is not an official python image"
    assert shared_flags()["--base-image"] == f"python{match.group(1)}{match.group(2)}"


def test_concurrency_above_one_comes_with_a_whole_cpu():
    flags = render.fill(render.FLAGS, step_env(build_test_step(), substitution_values(REQUIRED)))
    assert int(flags["--concurrency"]) == 1 or float(flags["--cpu"]) >= 1


# --------------------------------------------------------------------------
# Substitutions (Cloud Build refuses undeclared or unused ones; gcloud cannot tell offline)


def test_every_substitution_used_is_declared():
    config = load()
    used = used_names(config["steps"]) | used_names(config["substitutions"])
    assert {name for name in used if name.startswith("_")} <= set(config["substitutions"])


def test_every_declared_substitution_is_used_and_has_a_string_default():
    config = load()
    used = used_names(config["steps"]) | used_names(config["substitutions"])
    assert set(config["substitutions"]) <= used
    assert all(isinstance(value, str) for value in config["substitutions"].values())


def test_every_substitution_the_deploy_files_name_is_passed_to_the_step_that_fills_them_in():
    passed = set(step_env(build_test_step(), substitution_values(REQUIRED)))
    for relative in render.templates():
        named = used_names(yaml.safe_load((render.HERE / relative).read_text()))
        assert named <= passed, f"deploy/{relative} names {named - passed}, which the test step does not pass"


# --------------------------------------------------------------------------
# Least privilege


def test_the_webhook_never_gets_the_stripe_key_and_checkout_never_the_webhook_secret():
    values = substitution_values(REQUIRED)
    given = {deploy.entry_point: set(deploy.secrets(values)) for deploy in deploys()}
    assert given == {
        "create_embedded_session": {"STRIPE_SECRET_KEY"},
        "session_status": {"STRIPE_SECRET_KEY"},
        "stripe_webhook": {"STRIPE_WEBHOOK_SECRET"},
        # One service serves every path, so it needs both.
        "api": {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"},
    }


def test_secrets_come_from_the_latest_versions_of_the_secrets_named_by_substitutions():
    values = substitution_values(REQUIRED)
    expected = {
        "STRIPE_SECRET_KEY": f"{values['_STRIPE_KEY_SECRET']}:latest",
        "STRIPE_WEBHOOK_SECRET": f"{values['_WEBHOOK_SECRET_SECRET']}:latest",
    }
    for deploy in deploys():
        for name, reference in deploy.secrets(values).items():
            assert reference == expected[name], deploy.id


def test_no_secret_is_passed_as_a_plain_environment_variable():
    substitutions = step_env(build_test_step(), substitution_values(REQUIRED))
    for deploy in deploys():
        assert not {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"} & set(render.fill(deploy.env_file(), substitutions))
