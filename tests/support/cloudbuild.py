"""cloudbuild.yaml as Cloud Build reads it: substitutions filled in, steps and their commands.

Only what the deploy tests need to produce the commands the build runs: the
substitutions (built-ins, the file's defaults, then what an operator passes;
`$$` is a literal `$`), the test step, the function deploy steps (`bash -c
GUARD gcloud run deploy …`, run under one `_TARGET`) and the plain gcloud
steps (`entrypoint: gcloud`, run under any target: the reconcile job).
Whether gcloud accepts those commands is gcloud's to say
(tests/test_deploy_gcloud.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from deploy import render

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = ROOT / "cloudbuild.yaml"

# What Cloud Build itself substitutes; only PROJECT_ID is used, inside defaults.
BUILT_IN = {"PROJECT_ID": "example-project", "PROJECT_NUMBER": "123456789012", "LOCATION": "us-central1"}

# Every deploy needs the operator's frontend URL: its default is a placeholder the build refuses.
REQUIRED = {"_FRONTEND_URL": "https://shop.example.com"}

SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def load() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def substitute(text: str, values: dict) -> str:
    """Fill in `$NAME` / `${NAME}`; `$$` stays a literal `$`. Unknown names fail, as in Cloud Build."""

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        return values[match.group(1) or match.group(2)]

    return SUBSTITUTION.sub(replace, text)


def used_names(node) -> set[str]:
    """Every substitution named anywhere in a YAML value."""
    if isinstance(node, dict):
        return set().union(*(used_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(used_names(v) for v in node))
    if isinstance(node, str):
        return {m.group(1) or m.group(2) for m in SUBSTITUTION.finditer(node) if m.group(0) != "$$"}
    return set()


def substitution_values(overrides: dict | None = None) -> dict:
    """Built-ins, then the config's defaults, then what the operator passes."""
    declared = load()["substitutions"]
    unknown = set(overrides or {}) - set(declared)
    assert not unknown, f"Cloud Build would reject undeclared substitutions {unknown}"
    values = {**BUILT_IN, **declared, **(overrides or {})}
    # Dynamic substitutions: a default may name another substitution (${PROJECT_ID}).
    return {name: substitute(value, values) for name, value in values.items()}


def build_test_step() -> dict:
    return load()["steps"][0]


def step_env(step: dict, values: dict) -> dict:
    """A step's `env`, substituted: what its process sees besides the image's own environment."""
    return dict(substitute(item, values).split("=", 1) for item in step.get("env", []))


def render_deploy_files(out: Path, values: dict) -> dict[str, dict]:
    """What the test step's `python -m deploy.render .deploy` writes, given these substitutions."""
    return render.render(out, step_env(build_test_step(), values))


@dataclass
class Deploy:
    """One deploy step: `bash -c GUARD gcloud run deploy NAME --flags...`."""

    step: dict

    @property
    def id(self) -> str:
        return self.step["id"]

    @property
    def guard(self) -> str:
        return self.step["args"][1]

    @property
    def command(self) -> list[str]:
        # bash -c SCRIPT gcloud ARGS...: the command follows the script.
        return self.step["args"][2:]

    def flag(self, name: str) -> str:
        values = [arg.split("=", 1)[1] for arg in self.command if arg.startswith(f"--{name}=")]
        assert len(values) == 1, f"{self.id}: expected one --{name}, found {values}"
        return values[0]

    @property
    def entry_point(self) -> str:
        return self.flag("function")

    def secrets(self, values: dict) -> dict[str, str]:
        """--set-secrets as {ENV_NAME: "secret:version"}."""
        items = substitute(self.flag("set-secrets"), values).split(",")
        return dict(item.split("=", 1) for item in items)

    def env_file(self) -> str:
        """The --env-vars-file, relative to the folder the test step renders into."""
        path = self.flag("env-vars-file")
        prefix = ".deploy/"
        assert path.startswith(prefix), f"{self.id}: {path} is not one of the rendered files"
        return path[len(prefix) :]


def is_deploy(step: dict) -> bool:
    args = step.get("args", [])
    return step.get("entrypoint") == "bash" and len(args) > 4 and args[2] == "gcloud" and "deploy" in args[3:5]


def deploys() -> list[Deploy]:
    return [Deploy(step) for step in load()["steps"] if is_deploy(step)]


def deploy_ids() -> list[str]:
    try:
        return [deploy.id for deploy in deploys()]
    except Exception:  # noqa: BLE001 - a broken config fails the structural tests; these then have no cases
        return []


def deploy_by_id(step_id: str) -> Deploy:
    return next(deploy for deploy in deploys() if deploy.id == step_id)


@dataclass
class GcloudStep:
    """A step whose entrypoint is gcloud itself: `gcloud ARGS...` under any _TARGET."""

    step: dict

    @property
    def id(self) -> str:
        return self.step["id"]

    def command(self, values: dict) -> list[str]:
        return ["gcloud", *(substitute(arg, values) for arg in self.step["args"])]

    def flag(self, name: str, values: dict) -> str:
        found = [arg.split("=", 1)[1] for arg in self.command(values) if arg.startswith(f"--{name}=")]
        assert len(found) == 1, f"{self.id}: expected one --{name}, found {found}"
        return found[0]


def is_gcloud_step(step: dict) -> bool:
    return step.get("entrypoint") == "gcloud"


def gcloud_steps() -> list[GcloudStep]:
    return [GcloudStep(step) for step in load()["steps"] if is_gcloud_step(step)]


def gcloud_step_ids() -> list[str]:
    try:
        return [step.id for step in gcloud_steps()]
    except Exception:  # noqa: BLE001 - a broken config fails the structural tests; these then have no cases
        return []


def gcloud_step_by_id(step_id: str) -> GcloudStep:
    return next(step for step in gcloud_steps() if step.id == step_id)
