"""deploy/render.py: the build's substitutions filled into the files gcloud reads, checked on the way."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from deploy import render
from tests.support.cloudbuild import REQUIRED, ROOT, build_test_step, step_env, substitution_values


def substitutions(**overrides) -> dict:
    """What the build's test step passes to the renderer, with these substitutions chosen."""
    return step_env(build_test_step(), substitution_values({**REQUIRED, **overrides}))


def run_render(out, env: dict) -> subprocess.CompletedProcess:
    child = {key: value for key, value in os.environ.items() if not key.startswith("_")}
    return subprocess.run(
        [sys.executable, "-m", "deploy.render", str(out)],
        cwd=ROOT,
        env={**child, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_template_is_written_with_the_substitutions_filled_in(tmp_path):
    result = run_render(tmp_path, substitutions(_REGION="europe-west1", _FRONTEND_URL="https://shop.example.com"))
    assert result.returncode == 0, result.stderr
    for relative in render.templates():
        written = (tmp_path / relative).read_text()
        assert "${" not in written, relative
    flags = yaml.safe_load((tmp_path / render.FLAGS).read_text())
    assert flags["--region"] == "europe-west1"
    api = yaml.safe_load((tmp_path / "env/api.yaml").read_text())
    assert api["FRONTEND_URL"] == "https://shop.example.com"


def test_values_stay_strings_as_gcloud_requires_of_environment_variables(tmp_path):
    rendered = render.render(tmp_path, substitutions(_TRUSTED_PROXY_HOPS="2"))
    written = yaml.safe_load((tmp_path / "env/api.yaml").read_text())
    assert written == rendered["env/api.yaml"]
    assert written["TRUSTED_PROXY_HOPS"] == "2" and written["ALLOWED_ORIGINS"] == ""


def test_a_substitution_the_build_does_not_pass_stops_the_render(tmp_path):
    missing = {key: value for key, value in substitutions().items() if key != "_REGION"}
    with pytest.raises(render.RenderError, match=r"flags\.yaml: --region names '_REGION'"):
        render.render(tmp_path, missing)


def test_a_value_the_functions_would_refuse_stops_the_build_naming_the_setting(tmp_path):
    result = run_render(tmp_path, substitutions(_ALLOWED_ORIGINS="shop.example.com"))
    assert result.returncode == 1
    assert "ALLOWED_ORIGINS" in result.stderr
    assert "shop.example.com" not in result.stderr  # settings errors never quote values
