"""Running the real gcloud with no credentials, as a validator of commands and config files.

gcloud parses every flag and value (and the files flags name: build configs,
--flags-file, --env-vars-file) before it asks for an account. Run with an
empty configuration and no metadata server, a command that is right stops
at "You do not currently have an active account selected"; a wrong one
stops earlier with gcloud's own message. Nothing reaches the network.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.ci import missing

NO_ACCOUNT = "You do not currently have an active account selected"
PROJECT = "example-project"
TIMEOUT_SECONDS = 60


def require_gcloud() -> str:
    """The gcloud executable, or skip (fail under CI) saying how to install it."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        missing("gcloud is not installed: see https://cloud.google.com/sdk/docs/install "
                "(or apt-get install google-cloud-cli from Google's apt repository)")
    return gcloud


def offline_env(config_dir: Path) -> dict:
    """An environment in which gcloud has no account, no metadata server and no reason to go online."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(config_dir),
        "LANG": "C.UTF-8",
        "CLOUDSDK_CONFIG": str(config_dir),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "CLOUDSDK_CORE_PROJECT": PROJECT,
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
    }
    if "CLOUDSDK_PYTHON" in os.environ:
        env["CLOUDSDK_PYTHON"] = os.environ["CLOUDSDK_PYTHON"]
    return env


@dataclass(frozen=True)
class Outcome:
    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def stopped_at_no_account(self) -> bool:
        return self.returncode != 0 and NO_ACCOUNT in self.stderr

    def explain(self) -> str:
        """The command and gcloud's message, without the usage summary it appends to parse errors."""
        message = (self.stderr.strip() or self.stdout.strip()).split("\nUsage:")[0]
        return f"$ {shlex.join(self.command)}\nexit {self.returncode}\n{message}"


def run(command: list[str], cwd: Path | str | None = None, env: dict | None = None) -> Outcome:
    """Run one command (gcloud, or a script that runs it) in a fresh, empty gcloud configuration."""
    with tempfile.TemporaryDirectory(prefix="gcloud-config-") as config_dir:
        result = subprocess.run(
            command, cwd=cwd, env={**offline_env(Path(config_dir)), **(env or {})},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
        )
    return Outcome(tuple(command), result.returncode, result.stdout, result.stderr)


def run_all(commands: dict[str, dict]) -> dict[str, Outcome]:
    """Run many commands at once, each {"command": [...], "cwd": ..., "env": {...}}; results by key.

    Each gcloud start costs ~0.6 s of CPU, so a small pool keeps the whole set quick.
    """
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(run, **spec) for key, spec in commands.items()}
        return {key: future.result() for key, future in futures.items()}
