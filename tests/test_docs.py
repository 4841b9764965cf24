"""The docs say what the code does: event lists from one place, working curls, links that resolve."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from payments.events import HANDLED_EVENTS
from tests.conftest import ROOT, local_env

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
EVENT = re.compile(r"\b(?:checkout\.session|charge(?:\.dispute)?)\.[a-z_]+\b")


def shell_blocks(path: Path) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", path.read_text(), re.DOTALL)


def test_readme_fits_a_newcomers_first_screens():
    assert len(README.read_text().splitlines()) <= 200


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(path):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
        assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def test_the_endpoint_registration_names_exactly_the_handled_events():
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    listed = re.findall(r"^- `([a-z_.]+)`$", deploy, re.MULTILINE)
    registered = re.findall(r"enabled_events\[\]=([a-z_.]+)", deploy)

    assert listed == list(HANDLED_EVENTS)
    assert registered == list(HANDLED_EVENTS)


def test_the_webhook_guide_lists_exactly_the_handled_events():
    listed = re.findall(r"^- `([a-z_.]+)`$", (ROOT / "docs" / "webhook.md").read_text(), re.MULTILINE)

    assert listed == list(HANDLED_EVENTS)


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_no_doc_names_an_event_the_webhook_does_not_handle(path):
    named = set(EVENT.findall(path.read_text()))

    assert named <= set(HANDLED_EVENTS), named - set(HANDLED_EVENTS)


def local_curl_blocks() -> list[tuple[str, str]]:
    """(doc, block) for each shell block that calls the API `make run` serves on localhost:8080."""
    return [
        (path.name, block) for path in (README, *DOCS) for block in shell_blocks(path) if "localhost:8080/api/" in block
    ]


@pytest.mark.parametrize("doc, block", local_curl_blocks(), ids=lambda v: v if v.endswith(".md") else "")
def test_every_curl_works_when_pasted_next_to_make_run(stack, doc, block):
    script = block.replace("localhost:8080", f"127.0.0.1:{stack.options.api_port}")
    # The stack of this test keeps its settings in its own folder, not .local/.
    script = re.sub(r"(-m devtools\.simulate \w+)", rf"\1 --env-file {stack.env_file}", script)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=local_env(),
    )

    assert result.returncode == 0, result.stderr
    answers = json_objects(result.stdout)
    assert answers and not [a for a in answers if "error" in a], result.stdout


def json_objects(text: str) -> list[dict]:
    """The JSON objects in `text` (curl prints no newline after each)."""
    decoder, found, at = json.JSONDecoder(), [], text.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        found.append(value)
        at = text.find("{", end)
    return found
