"""deploy/setup.sh run for real, with a recorder on PATH in gcloud's place.

The recorder logs each call (its arguments, and standard input where gcloud
would read a secret from it) and answers look-ups as a project with nothing,
or everything, already created would: `describe` succeeds or fails, and a
`list` of alert policies names one or none.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.cloudbuild import ROOT

SETUP = ROOT / "deploy" / "setup.sh"
PROJECT = "example-project"
# Sample values for everything setup.sh can be told, so every command it has is printed.
DRY_RUN_ARGS = (
    "--dry-run",
    f"--project={PROJECT}",
    "--region=us-central1",
    "--trigger=example-owner/example-repo",
    "--frontend-url=https://shop.example.com",
)

RECORDER = """#!/bin/bash
stdin=
for arg in "$@"; do
  if [ "$arg" = --data-file=- ]; then stdin=$(cat); fi
done
"{python}" -c 'import json, sys; print(json.dumps({{"argv": sys.argv[2:], "stdin": sys.argv[1]}}))' \\
  "$stdin" "$@" >> "$GCLOUD_LOG"
case " $* " in
  *" describe "*) [ "$EXISTING" = everything ] ;;
  *" policies list "*) [ "$EXISTING" != everything ] || echo projects/example-project/alertPolicies/1234 ;;
  *" config get-value account "*) echo operator@example.com ;;
esac
"""


def install_recorder(folder: Path) -> Path:
    """A folder holding the recorder as `gcloud`, to put first on PATH."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(RECORDER.format(python=sys.executable))
    gcloud.chmod(0o755)
    return bin_dir


def run_setup(
    recorder: Path, *args: str, existing: str = "nothing", stdin: str = "", project: str = "example-project"
) -> tuple[subprocess.CompletedProcess, list]:
    """Run setup.sh with the recorder as gcloud; returns its result and the calls it made."""
    log = recorder.parent / "gcloud.log"
    log.write_text("")
    env = {"PATH": f"{recorder}:/usr/bin:/bin", "GCLOUD_LOG": str(log), "EXISTING": existing, "HOME": str(recorder)}
    result = subprocess.run(
        ["bash", str(SETUP), f"--project={project}", *args],
        input=stdin,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, [json.loads(line) for line in log.read_text().splitlines()]


def dry_run_commands() -> list[list[str]]:
    """Every command setup.sh would run on a new project, from its --dry-run (one shell-quoted command per line)."""
    printed = subprocess.run(
        ["bash", str(SETUP), *DRY_RUN_ARGS], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return [shlex.split(line) for line in printed.splitlines() if line.strip()]
