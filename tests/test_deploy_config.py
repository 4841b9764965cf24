"""The deploy configuration, checked against the code it deploys.

cloudbuild.yaml is read the way Cloud Build and gcloud read it: substitutions
are filled in (defaults, or what an operator passes), `$$` is a literal `$`,
repeated `--set-env-vars` / `--set-secrets` flags add up, and `^DELIM^`
switches the delimiter (`gcloud topic escaping`). Each deploy's environment
is then rebuilt from the config, secrets replaced by test values, and its
entry point serves real requests through functions-framework with nothing
else in the environment: a setting the code needs but the deploy lacks makes
it fail, and every secret and setting a deploy is given must change what it
serves when taken away (the few no request can show are instead checked to
go exactly where they are used), so none is handed out that the code does
not use.

The ignore files are checked with git's ignore rules, which `.gcloudignore`
borrows (`gcloud topic gcloudignore`; `#!include:` is expanded here as gcloud
does), and the uploaded function source is installed into a fresh virtual
environment from requirements.txt alone.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import stripe
import yaml
from functions_framework import _function_registry, create_app

from checkout.create import session_params
from common import ratelimit
from payments import store
from tests.conftest import MAIN, ROOT, TEST_KEY, WEBHOOK_SECRET, reset_instance, signed_headers

CONFIG = ROOT / "cloudbuild.yaml"
FUNCTION_IGNORE = ROOT / ".gcloudignore"
BUILD_IGNORE = ROOT / ".gcloudignore.build"

# What Cloud Build itself substitutes; only PROJECT_ID is used, inside defaults.
BUILT_IN = {"PROJECT_ID": "example-project", "PROJECT_NUMBER": "123456789012", "LOCATION": "us-central1"}

# Every deploy needs the operator's frontend URL: its default is a placeholder the build refuses.
REQUIRED = {"_FRONTEND_URL": "https://shop.example.com"}
FRONTEND_ORIGIN = "https://shop.example.com"
OTHER_ORIGIN = "https://admin.shop.example.com"
# Choices an operator might pass with --substitutions, picked so that each
# setting they feed is visible in a response: a second allowed origin (with a
# comma, so the alternate delimiter is exercised), a return path, rates of one
# request a minute, and two trusted proxy hops (behind a load balancer).
OPERATOR = {
    **REQUIRED,
    "_ALLOWED_ORIGINS": f"{FRONTEND_ORIGIN},{OTHER_ORIGIN}",
    "_CHECKOUT_RETURN_PATH": "/thanks",
    "_RATE_LIMIT_CREATE": "1/minute",
    "_RATE_LIMIT_STATUS": "1/minute",
    "_TRUSTED_PROXY_HOPS": "2",
}
SCENARIOS = {"defaults": REQUIRED, "operator": OPERATOR}

# Secret Manager values, replaced by values shaped like the real ones.
SECRET_TEST_VALUES = {"STRIPE_SECRET_KEY": TEST_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}

# Settings whose removal no request here can show, and what covers them instead.
NOT_OBSERVABLE = {
    "THREADS": "read by functions-framework's gunicorn, not the app; matched to --concurrency below",
    "RATE_LIMIT_STORAGE_URI": "its default memory:// is the only storage without a server; given where limits apply",
    "PAYMENTS_STORE": "pointed at a temporary SQLite file here; given, as firestore, where the store is used",
    "PAYMENTS_COLLECTION": "read only by the Firestore store; given where the store is used",
    "EVENTS_COLLECTION": "read only by the Firestore store; given where the store is used",
}
STORE_SETTINGS = {"PAYMENTS_STORE", "PAYMENTS_COLLECTION", "EVENTS_COLLECTION"}

# Three callers behind one load balancer (203.0.113.9): client A, client B, client A again.
CALLERS = (
    ("198.51.100.1, 203.0.113.9", OTHER_ORIGIN),
    ("198.51.100.2, 203.0.113.9", FRONTEND_ORIGIN),
    ("198.51.100.1, 203.0.113.9", FRONTEND_ORIGIN),
)


# --------------------------------------------------------------------------
# Reading cloudbuild.yaml as Cloud Build and gcloud do


def load_config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def substitute(text: str, values: dict) -> str:
    """Fill in `$NAME` / `${NAME}`; `$$` stays a literal `$`. Unknown names fail, as in Cloud Build."""

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        return values[match.group(1) or match.group(2)]

    return SUBSTITUTION.sub(replace, text)


def substitution_values(overrides: dict | None = None) -> dict:
    """Built-ins, then the config's defaults, then what the operator passes."""
    declared = load_config()["substitutions"]
    unknown = set(overrides or {}) - set(declared)
    assert not unknown, f"Cloud Build would reject undeclared substitutions {unknown}"
    values = {**BUILT_IN, **declared, **(overrides or {})}
    # Dynamic substitutions: a default may name another substitution (${PROJECT_ID}).
    return {name: substitute(value, values) for name, value in values.items()}


def used_names(node) -> set[str]:
    """Every substitution named anywhere in a YAML value."""
    if isinstance(node, dict):
        return set().union(*(used_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(used_names(v) for v in node))
    if isinstance(node, str):
        return {m.group(1) or m.group(2) for m in SUBSTITUTION.finditer(node) if m.group(0) != "$$"}
    return set()


def gcloud_dict(text: str) -> dict:
    """A gcloud dict flag value: KEY=VALUE items split on `,` or on a `^DELIM^` prefix."""
    delimiter = ","
    if text.startswith("^") and "^" in text[1:]:
        end = text.index("^", 1)
        delimiter, text = text[1:end], text[end + 1:]
    items = {}
    for item in text.split(delimiter):
        key, sep, value = item.partition("=")
        assert sep and key, f"gcloud would reject {item!r}: not KEY=VALUE"
        items[key] = value
    return items


@dataclass
class Deploy:
    """One deploy step: the gcloud command it runs when its target is chosen."""

    step: dict

    @property
    def id(self) -> str:
        return self.step["id"]

    @property
    def script(self) -> str:
        return self.step["args"][1]

    @property
    def command(self) -> list[str]:
        # bash -c SCRIPT gcloud ARGS...: the command follows the script.
        return self.step["args"][2:]

    @property
    def kind(self) -> str:
        return self.command[1]  # functions | run

    @property
    def flags(self) -> dict[str, list]:
        flags: dict[str, list] = {}
        for arg in self.command[4:]:
            if arg.startswith("--"):
                name, sep, value = arg[2:].partition("=")
                flags.setdefault(name, []).append(value if sep else True)
        return flags

    def flag(self, name: str):
        values = self.flags.get(name, [])
        assert len(values) == 1, f"{self.id}: expected one --{name}, found {values}"
        return values[0]

    @property
    def entry_point(self) -> str:
        return self.flag("entry-point" if self.kind == "functions" else "function")

    def env_vars(self, values: dict) -> dict:
        """--set-env-vars, repeated flags added up; gcloud refuses a key given twice."""
        env: dict = {}
        for flag in self.flags.get("set-env-vars", []):
            for key, value in gcloud_dict(substitute(flag, values)).items():
                assert key not in env, f"{self.id}: {key} is set twice"
                env[key] = value
        return env

    def secrets(self, values: dict) -> dict:
        """--set-secrets as {ENV_NAME: "secret:version"}."""
        secrets: dict = {}
        for flag in self.flags.get("set-secrets", []):
            for key, value in gcloud_dict(substitute(flag, values)).items():
                assert key not in secrets, f"{self.id}: secret {key} is set twice"
                secrets[key] = value
        return secrets

    def environment(self, values: dict) -> dict:
        """What the deployed code sees: env vars plus secrets (test values in place of the real ones)."""
        env = self.env_vars(values)
        for name in self.secrets(values):
            env[name] = SECRET_TEST_VALUES[name]
        return env


def is_deploy(step: dict) -> bool:
    # bash -c SCRIPT gcloud functions|run deploy NAME --flags...
    args = step.get("args", [])
    return step.get("entrypoint") == "bash" and len(args) > 4 and args[2] == "gcloud" and args[4] == "deploy"


def deploys() -> list[Deploy]:
    return [Deploy(step) for step in load_config()["steps"] if is_deploy(step)]


def first_step() -> dict:
    return load_config()["steps"][0]


def deploy_ids() -> list[str]:
    try:
        return [deploy.id for deploy in deploys()]
    except Exception:  # a broken config fails test_cloudbuild_yaml_parses; these then have no cases
        return []


def deploy_by_id(step_id: str) -> Deploy:
    return next(deploy for deploy in deploys() if deploy.id == step_id)


def http_functions_in_main() -> set[str]:
    """Functions main.py registers with @functions_framework.http."""
    tree = ast.parse(Path(MAIN).read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(decorator) == "functions_framework.http" for decorator in node.decorator_list)
    }


# --------------------------------------------------------------------------
# The config's shape


def test_cloudbuild_yaml_parses_into_named_steps():
    config = load_config()
    assert config["steps"], "no steps"
    assert all(step.get("id") and step.get("name") for step in config["steps"])


def test_test_step_comes_first_and_every_deploy_waits_for_it_alone():
    steps = load_config()["steps"]
    test_id = steps[0]["id"]
    deploy_steps = [step for step in steps if is_deploy(step)]
    assert deploy_steps and all(is_deploy(step) for step in steps[1:])
    # waitFor [test] runs the deploys in parallel with each other, after the tests.
    assert {step["id"]: step.get("waitFor") for step in deploy_steps} == {
        step["id"]: [test_id] for step in deploy_steps
    }


def run_test_step(tmp_path: Path, overrides: dict, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the test step's script with apt-get and make replaced by stubs that log their arguments."""
    step = first_step()
    script = substitute(step["args"][1], substitution_values(overrides))
    log = tmp_path / "commands.log"
    log.touch()
    stubs = 'apt-get() { echo "apt-get $*" >> "$COMMAND_LOG"; }\nmake() { echo "make $*" >> "$COMMAND_LOG"; }\n'
    env = {**os.environ, **dict(item.split("=", 1) for item in step.get("env", [])), "COMMAND_LOG": str(log)}
    result = subprocess.run(
        [step.get("entrypoint", "bash"), step["args"][0], stubs + script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )
    return result, log.read_text().splitlines()


def test_test_step_installs_node_and_chromium_then_runs_make_test(tmp_path):
    result, commands = run_test_step(tmp_path, REQUIRED)
    assert result.returncode == 0, result.stderr
    installs = [line.split() for line in commands if line.startswith("apt-get install")]
    assert installs and {"nodejs", "npm", "chromium", "chromium-driver"} <= set(installs[-1])
    assert commands[-1] == "make test"


def test_test_step_refuses_the_placeholder_frontend_url(tmp_path):
    result, commands = run_test_step(tmp_path, {})
    assert result.returncode != 0
    assert "_FRONTEND_URL" in result.stderr
    assert commands == []


def test_test_step_refuses_an_unknown_target(tmp_path):
    result, commands = run_test_step(tmp_path, {**REQUIRED, "_TARGET": "function"})
    assert result.returncode != 0
    assert "_TARGET" in result.stderr
    assert commands == []


def test_test_step_refuses_an_upload_without_the_tests(tmp_path):
    result, commands = run_test_step(tmp_path, REQUIRED, cwd=tmp_path)
    assert result.returncode != 0
    assert "--ignore-file=.gcloudignore.build" in result.stderr
    assert commands == []


@pytest.mark.parametrize("target", ["functions", "run"])
def test_target_chooses_which_deploys_run(target):
    values = substitution_values({**REQUIRED, "_TARGET": target})
    ran = set()
    for deploy in deploys():
        command = [substitute(arg, values) for arg in deploy.command]
        # `echo` in place of gcloud: the guard runs "$0" "$@", so the command is printed.
        result = subprocess.run(
            ["bash", "-c", substitute(deploy.script, values), "echo", *command[1:]],
            capture_output=True, text=True, check=True, timeout=30,
        )
        if result.stdout.strip() == " ".join(command[1:]):
            ran.add(deploy.id)
        else:
            assert "Skipped" in result.stdout, result.stdout
    assert ran == {deploy.id for deploy in deploys() if deploy.kind == target}


def test_one_functions_deploy_per_http_function_and_one_service_for_api():
    by_kind = {"functions": set(), "run": set()}
    for deploy in deploys():
        by_kind[deploy.kind].add(deploy.entry_point)
    assert by_kind == {"functions": http_functions_in_main() - {"api"}, "run": {"api"}}


def test_every_entry_point_is_registered_as_an_http_function():
    for deploy in deploys():
        create_app(deploy.entry_point, MAIN)  # loads main.py as the runtime does
        assert _function_registry.REGISTRY_MAP.get(deploy.entry_point) == "http", deploy.id


def test_functions_deploy_as_public_gen2_http_functions_running_as_the_runtime_account():
    for deploy in deploys():
        if deploy.kind != "functions":
            continue
        assert deploy.flags["gen2"] == [True]
        assert deploy.flags["trigger-http"] == [True]
        # Browsers and Stripe call these without Google credentials.
        assert deploy.flags["allow-unauthenticated"] == [True]
        assert deploy.flag("source") == "."
        assert deploy.flag("region") == "${_REGION}"
        assert deploy.flag("service-account") == "${_RUNTIME_SA}"


def test_api_service_deploys_from_source_as_a_public_service_running_as_the_runtime_account():
    for deploy in deploys():
        if deploy.kind != "run":
            continue
        assert deploy.flag("source") == "."
        assert deploy.flags["allow-unauthenticated"] == [True]
        assert deploy.flag("region") == "${_REGION}"
        assert deploy.flag("service-account") == "${_RUNTIME_SA}"


def test_every_deploy_sets_its_capacity():
    for deploy in deploys():
        for name in ("memory", "cpu", "concurrency", "timeout", "max-instances", "min-instances"):
            deploy.flag(name)


def test_runtime_is_the_python_the_tests_run_on():
    # The tests run on python:3.12; every deploy must run the same Python.
    image = first_step()["name"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)(-[a-z0-9.-]+)?", image)
    assert match, f"test step image {image} is not an official python image"
    runtime = f"python{match.group(1)}{match.group(2)}"
    for deploy in deploys():
        name = "runtime" if deploy.kind == "functions" else "base-image"
        assert deploy.flag(name) == runtime, deploy.id


def test_concurrency_above_one_comes_with_a_whole_cpu():
    values = substitution_values(REQUIRED)
    for deploy in deploys():
        concurrency = int(substitute(deploy.flag("concurrency"), values))
        cpu = float(substitute(deploy.flag("cpu"), values))
        assert concurrency == 1 or cpu >= 1, deploy.id


def test_gunicorn_threads_match_concurrency():
    values = substitution_values(REQUIRED)
    for deploy in deploys():
        assert deploy.env_vars(values).get("THREADS") == substitute(deploy.flag("concurrency"), values), deploy.id


def test_every_substitution_used_is_declared():
    config = load_config()
    used = used_names(config["steps"]) | used_names(config["substitutions"])
    assert {name for name in used if name.startswith("_")} <= set(config["substitutions"])
    assert {name for name in used if not name.startswith("_")} <= set(BUILT_IN)


def test_every_declared_substitution_is_used_and_has_a_string_default():
    # Cloud Build fails a build whose substitutions are not all used.
    config = load_config()
    used = used_names(config["steps"]) | used_names(config["substitutions"])
    assert set(config["substitutions"]) <= used
    assert all(isinstance(value, str) for value in config["substitutions"].values())


def test_the_webhook_never_gets_the_stripe_key_and_checkout_never_the_webhook_secret():
    values = substitution_values(REQUIRED)
    given = {deploy.entry_point: set(deploy.secrets(values)) for deploy in deploys()}
    assert given["stripe_webhook"] == {"STRIPE_WEBHOOK_SECRET"}
    assert given["create_embedded_session"] == given["session_status"] == {"STRIPE_SECRET_KEY"}


def test_secrets_come_from_the_secret_manager_secrets_named_by_substitutions():
    values = substitution_values(REQUIRED)
    expected = {
        "STRIPE_SECRET_KEY": f"{values['_STRIPE_KEY_SECRET']}:latest",
        "STRIPE_WEBHOOK_SECRET": f"{values['_WEBHOOK_SECRET_SECRET']}:latest",
    }
    for deploy in deploys():
        for name, reference in deploy.secrets(values).items():
            assert reference == expected[name], deploy.id


# --------------------------------------------------------------------------
# Each deploy serves real requests with exactly its configured environment


@contextlib.contextmanager
def only_environment(env: dict):
    """Run with `env` as the whole process environment, as a fresh instance would have it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def summary(response) -> tuple:
    """What a caller sees: status, CORS grant and body (the per-session client_secret masked)."""
    body = response.get_json(silent=True) or {}
    if "client_secret" in body:
        body = {**body, "client_secret": "<client secret>"}
    return response.status_code, response.headers.get("Access-Control-Allow-Origin"), body


def completed_session(standin) -> tuple[str, dict]:
    """A paid Checkout Session on the stand-in and the event Stripe sends for it."""
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": standin.base_url})
    params = session_params(FRONTEND_ORIGIN + "/return?session_id={CHECKOUT_SESSION_ID}")
    session = client.v1.checkout.sessions.create(params=params)
    [event] = standin.complete(session.id)
    return session.id, event


def probe_create(client, path: str, standin) -> list:
    seen = [
        summary(client.post(path, json={}, headers={"Origin": origin, "X-Forwarded-For": forwarded}))
        for forwarded, origin in CALLERS
    ]
    seen.append(sorted(session["return_url"] for session in standin.sessions))
    return seen


def probe_status(client, path: str, standin) -> list:
    session_id, _ = completed_session(standin)
    return [
        summary(client.get(path, query_string={"session_id": session_id},
                           headers={"Origin": origin, "X-Forwarded-For": forwarded}))
        for forwarded, origin in CALLERS
    ]


def probe_webhook(client, path: str, standin) -> list:
    _, event = completed_session(standin)
    payload = json.dumps(event)
    # Stripe delivers at least once: the second delivery is recognised as a repeat.
    return [summary(client.post(path, data=payload, headers=signed_headers(payload))) for _ in range(2)]


PROBES = {"create_embedded_session": probe_create, "session_status": probe_status, "stripe_webhook": probe_webhook}


def served_ok(entry_point: str, seen: list) -> bool:
    """The first request was served as it would be in production."""
    status, _, body = seen[0]
    if entry_point == "create_embedded_session":
        return status == 200 and "client_secret" in body
    if entry_point == "session_status":
        return status == 200 and body == {"status": "complete", "payment_status": "paid"}
    return status == 200 and body == {"received": True, "duplicate": False} and seen[1][2]["duplicate"] is True


def endpoints(deploy: Deploy) -> list[tuple[str, str]]:
    """(entry point, path) for each endpoint the deploy serves: one function, or every route of `api`."""
    if deploy.entry_point != "api":
        return [(deploy.entry_point, "/")]
    import main

    paths = {handler.__name__: path for path, handler in main.ROUTES.items()}
    return [(name, paths[name]) for name in PROBES]


@dataclass
class Served:
    seen: list
    store_opened: bool
    rate_limited: bool


def serve(deploy: Deploy, environment: dict, standin, database: Path) -> Served:
    """Start the deploy's entry point with only `environment` and probe every endpoint it serves.

    Test-only additions: the Stripe stand-in instead of api.stripe.com, and a
    temporary SQLite file instead of Firestore (never a real project's).
    """
    env = {**environment, "STRIPE_API_BASE": standin.base_url, "PAYMENTS_STORE": f"sqlite:///{database}"}
    with only_environment(env):
        reset_instance()
        standin.reset()
        try:
            client = create_app(deploy.entry_point, MAIN).test_client()
            seen = [(name, PROBES[name](client, path, standin)) for name, path in endpoints(deploy)]
            return Served(seen, store._store is not None, ratelimit._limiter.cache_info().currsize > 0)
        finally:
            reset_instance()


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("step_id", deploy_ids())
def test_each_deploy_serves_real_requests_with_only_its_configured_environment(step_id, scenario, standin, tmp_path):
    deploy = deploy_by_id(step_id)
    environment = deploy.environment(substitution_values(SCENARIOS[scenario]))
    served = serve(deploy, environment, standin, tmp_path / "payments.db")
    for entry_point, seen in served.seen:
        assert served_ok(entry_point, seen), f"{entry_point}: {seen}"


@pytest.mark.parametrize("step_id", deploy_ids())
def test_every_setting_and_secret_a_deploy_is_given_changes_what_it_serves(step_id, standin, tmp_path):
    deploy = deploy_by_id(step_id)
    environments = {name: deploy.environment(substitution_values(o)) for name, o in SCENARIOS.items()}
    baselines = {
        name: serve(deploy, env, standin, tmp_path / f"{name}.db").seen for name, env in environments.items()
    }
    given = set().union(*environments.values())
    without_effect = []
    for setting in sorted(given - set(NOT_OBSERVABLE)):
        changed = False
        for name, env in environments.items():
            reduced = {key: value for key, value in env.items() if key != setting}
            seen = serve(deploy, reduced, standin, tmp_path / f"{name}-{setting}.db").seen
            changed = changed or seen != baselines[name]
        if not changed:
            without_effect.append(setting)
    assert without_effect == [], f"{deploy.id} is given settings it does not use: {without_effect}"


@pytest.mark.parametrize("step_id", deploy_ids())
def test_store_settings_are_given_exactly_where_the_store_is_used(step_id, standin, tmp_path):
    deploy = deploy_by_id(step_id)
    environment = deploy.environment(substitution_values(REQUIRED))
    served = serve(deploy, environment, standin, tmp_path / "payments.db")
    if served.store_opened:
        assert STORE_SETTINGS <= set(environment)
        assert environment["PAYMENTS_STORE"] == "firestore"
    else:
        assert not STORE_SETTINGS & set(environment)


@pytest.mark.parametrize("step_id", deploy_ids())
def test_rate_limit_storage_is_given_exactly_where_requests_are_rate_limited(step_id, standin, tmp_path):
    deploy = deploy_by_id(step_id)
    environment = deploy.environment(substitution_values(REQUIRED))
    served = serve(deploy, environment, standin, tmp_path / "payments.db")
    assert ("RATE_LIMIT_STORAGE_URI" in environment) == served.rate_limited


# --------------------------------------------------------------------------
# What gets uploaded


def git_ignore_patterns(ignore_file: Path) -> str:
    """The ignore file with `#!include:FILE` lines replaced by FILE, as gcloud reads it."""
    lines = []
    for line in ignore_file.read_text().splitlines():
        if line.startswith("#!include:"):
            lines.extend((ignore_file.parent / line[len("#!include:"):].strip()).read_text().splitlines())
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def uploaded_files(root: Path, ignore_file: Path, scratch: Path) -> set[str]:
    """The files under `root` that `ignore_file` lets through, by git's ignore rules.

    A throwaway git directory with an empty index lists every file of `root`
    as untracked, filtered by exactly these patterns (not root's .gitignore,
    nor any global excludes).
    """
    scratch.mkdir(parents=True, exist_ok=True)
    patterns = scratch / "patterns"
    patterns.write_text(git_ignore_patterns(ignore_file))
    git_dir = scratch / "git"
    subprocess.run(["git", "init", "-q", str(git_dir)], check=True)
    listed = subprocess.run(
        ["git", f"--git-dir={git_dir / '.git'}", f"--work-tree={root}", "ls-files", "--others", f"--exclude-from={patterns}", "-z"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    return {path for path in listed.split("\0") if path}


SAMPLE_TREE = (
    "main.py", "requirements.txt", "checkout/create.py", "payments/store.py",
    "tests/test_deploy_config.py", "devtools/firestore_emulator.py", "devtools/stripe_standin.py",
    "bench/run.py", "docs/notes.md", ".ci/run", "Makefile", "pytest.ini", "requirements-dev.txt",
    "cloudbuild.yaml", "README.md",
    ".venv/bin/python", "node_modules/pkg/index.js", ".local/payments.db", "__pycache__/main.cpython-312.pyc",
    "checkout/__pycache__/create.cpython-312.pyc", ".pytest_cache/README.md", ".env", ".git/config",
)
LOCAL_STATE_DIRS = {".venv", "node_modules", ".local", "__pycache__", ".pytest_cache", ".git"}
LOCAL_STATE_FILES = {".env"}


def sample_tree(tmp_path: Path) -> Path:
    """A checkout after `make test`: code, tests, tools, and the local state a run leaves behind."""
    root = tmp_path / "tree"
    for path in SAMPLE_TREE + (".gitignore", FUNCTION_IGNORE.name, BUILD_IGNORE.name):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).touch()
    for ignore in (ROOT / ".gitignore", FUNCTION_IGNORE, BUILD_IGNORE):
        shutil.copy(ignore, root / ignore.name)
    return root


def is_local_state(path: str) -> bool:
    *folders, name = path.split("/")
    return bool(LOCAL_STATE_DIRS & set(folders)) or name in LOCAL_STATE_FILES


def test_function_upload_leaves_out_tests_tools_and_local_state(tmp_path):
    root = sample_tree(tmp_path)
    uploaded = uploaded_files(root, root / FUNCTION_IGNORE.name, tmp_path / "scratch")
    assert uploaded == {"main.py", "requirements.txt", "checkout/create.py", "payments/store.py"}


def test_build_upload_keeps_the_tests_and_leaves_out_local_state(tmp_path):
    root = sample_tree(tmp_path)
    uploaded = uploaded_files(root, root / BUILD_IGNORE.name, tmp_path / "scratch")
    # The test step runs `make test`, which needs all of these...
    assert {"tests/test_deploy_config.py", "devtools/firestore_emulator.py", "devtools/stripe_standin.py",
            "Makefile", "pytest.ini", "requirements-dev.txt", FUNCTION_IGNORE.name} <= uploaded
    # ...and recreates these itself.
    assert not [path for path in uploaded if is_local_state(path)]


def runtime_packages() -> set[str]:
    """This repository's packages that main.py loads, at import or on first use (main.HANDLER_MODULES)."""
    listing = (
        "import importlib, json, sys, main\n"
        "for name in main.HANDLER_MODULES: importlib.import_module(name)\n"
        "root = sys.argv[1]\n"
        "files = {name: getattr(module, '__file__', None) or '' for name, module in list(sys.modules.items())}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name, path in files.items()"
        " if path.startswith(root + '/') and '.' in name})))\n"
    )
    result = subprocess.run([sys.executable, "-c", listing, str(ROOT)], cwd=ROOT,
                            capture_output=True, text=True, check=True, timeout=60)
    # Installed packages live under .venv/ here; only this repository's own packages count.
    return {name for name in json.loads(result.stdout) if (ROOT / name / "__init__.py").is_file()}


def test_function_upload_from_this_checkout_is_the_runtime_code(tmp_path):
    uploaded = uploaded_files(ROOT, FUNCTION_IGNORE, tmp_path / "scratch")
    packages = runtime_packages()
    needed = {"main.py", "requirements.txt"} | {
        str(path.relative_to(ROOT)) for package in packages for path in (ROOT / package).rglob("*.py")
    }
    assert needed <= uploaded
    extra = [path for path in uploaded
             if path not in ("main.py", "requirements.txt") and path.split("/")[0] not in packages]
    assert extra == []


def test_uploaded_source_imports_with_only_requirements_txt_installed(tmp_path):
    """A fresh virtual environment, `pip install -r requirements.txt`, then import what the runtime imports.

    Needs PyPI (CI has it); pip's cache makes reruns quick.
    """
    source = tmp_path / "source"
    for path in uploaded_files(ROOT, FUNCTION_IGNORE, tmp_path / "scratch"):
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, source / path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
         "-r", "requirements.txt"],
        cwd=source, env=env, capture_output=True, text=True, timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    # main, plus what is imported only on first use: the stores, Secret Manager, email checks.
    imports = ("import main, functions_framework, payments.firestore_store, payments.sqlite_store, "
               "email_validator, google_crc32c, grpc; from google.cloud import secretmanager")
    result = subprocess.run([str(python), "-c", imports], cwd=source, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
