"""Running the real gcloud with no credentials, as a validator of commands and config files.

gcloud parses every flag and value (and the files flags name: build configs,
--flags-file, --env-vars-file) before it asks for an account. Run with an
empty configuration and no metadata server, a command that is right stops
at "You do not currently have an active account selected"; a wrong one
stops earlier with gcloud's own message. Nothing reaches the network.
"""

from __future__ import annotations

import json
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
        missing(
            "gcloud is not installed: see https://cloud.google.com/sdk/docs/install "
            "(or apt-get install google-cloud-cli from Google's apt repository)"
        )
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
            command,
            cwd=cwd,
            env={**offline_env(Path(config_dir)), **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
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


# Run with gcloud's own Python: parse a policy file exactly as
# `gcloud alpha monitoring policies create --policy-from-file` does, then list
# every field or enum value the Monitoring API's messages do not define
# (apitools keeps those aside instead of failing).
_PARSE_POLICY = """
import json, sys
root, path = sys.argv[1], sys.argv[2]
sys.path[:0] = [root + "/lib", root + "/lib/third_party"]
from apitools.base.protorpclite import messages
from googlecloudsdk.api_lib.util import apis
from googlecloudsdk.command_lib.monitoring import util

def unknown(message, where):
    found = [where + "." + name for name in message.all_unrecognized_fields()]
    for field in message.all_fields():
        value = message.get_assigned_value(field.name)
        for item in (value if field.repeated else [value]) or []:
            if isinstance(item, messages.Message):
                found += unknown(item, where + "." + field.name)
    return found

try:
    policy = util.MessageFromString(open(path).read(), apis.GetMessagesModule("monitoring", "v3").AlertPolicy,
                                    "AlertPolicy")
    print(json.dumps({"error": None, "unknown": unknown(policy, "policy")}))
except Exception as error:
    print(json.dumps({"error": str(error), "unknown": []}))
"""


def parse_alert_policy(path: Path) -> dict:
    """{"error": gcloud's parse error or None, "unknown": fields and values the API does not define}."""
    require_gcloud()
    with tempfile.TemporaryDirectory(prefix="gcloud-config-") as config_dir:
        env = offline_env(Path(config_dir))
        info = subprocess.run(
            ["gcloud", "info", "--format=json(installation.sdk_root,basic.python_location)"],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=True,
        )
        where = json.loads(info.stdout)
        parsed = subprocess.run(
            [where["basic"]["python_location"], "-c", _PARSE_POLICY, where["installation"]["sdk_root"], str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
    assert parsed.returncode == 0, parsed.stderr
    return json.loads(parsed.stdout)
