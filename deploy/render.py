"""Fill the build's substitutions into the files `gcloud run deploy` reads.

Cloud Build replaces `${_NAME}` only inside cloudbuild.yaml, so the files
handed to gcloud (`--flags-file`, `--env-vars-file`) are kept here as
templates naming the same substitutions. The build's test step passes the
substitutions in its environment and runs

    python -m deploy.render OUT_DIR

which writes every template, values filled in, to the same relative path
under OUT_DIR. Each function's environment is then parsed by the settings
code the function itself runs, so a bad value (a malformed `_FRONTEND_URL`
or `_ALLOWED_ORIGINS`) stops the build before anything is deployed rather
than deploying a function that answers 500.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from string import Template

import yaml

from common import settings
from common.errors import SettingError

HERE = Path(__file__).resolve().parent
FLAGS = "flags.yaml"
ENV_DIR = "env"


class RenderError(Exception):
    """A template names a substitution the build does not pass, or a value the code would refuse."""


def templates() -> list[str]:
    """The template files, relative to this folder: the shared flags, then one environment per entry point."""
    return [FLAGS, *sorted(f"{ENV_DIR}/{path.name}" for path in (HERE / ENV_DIR).glob("*.yaml"))]


def fill(relative: str, substitutions: Mapping[str, str]) -> dict:
    """One template with its `${_NAME}` values replaced by the substitutions' values."""
    filled = {}
    for key, value in yaml.safe_load((HERE / relative).read_text()).items():
        if isinstance(value, str):
            try:
                value = Template(value).substitute(substitutions)
            except KeyError as missing:
                raise RenderError(f"deploy/{relative}: {key} names {missing}, which the build does not pass") from None
        filled[key] = value
    return filled


def check_environment(relative: str, environment: dict) -> None:
    try:
        settings.from_env(environment)
    except SettingError as error:
        raise RenderError(f"deploy/{relative}: {error.name} {error.problem}") from None


def render(out: Path, substitutions: Mapping[str, str]) -> dict[str, dict]:
    """Write every filled-in template under `out`; returns them by relative path."""
    rendered = {}
    for relative in templates():
        content = fill(relative, substitutions)
        if relative.startswith(ENV_DIR + "/"):
            check_environment(relative, content)
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(content, default_flow_style=False, sort_keys=False))
        rendered[relative] = content
    return rendered


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploy.render OUT_DIR", file=sys.stderr)
        return 2
    try:
        rendered = render(Path(argv[0]), os.environ)
    except RenderError as error:
        print(error, file=sys.stderr)
        return 1
    # The build log shows what each function is given; these files hold no secrets.
    for relative, content in rendered.items():
        print(f"--- {relative}\n{yaml.safe_dump(content, sort_keys=False)}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
