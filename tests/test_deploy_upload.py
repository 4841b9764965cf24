"""What the deploys upload, by gcloud's own reading of the ignore files.

`gcloud run deploy --source=.` uploads what .gcloudignore lets through: the
runtime code and requirements.txt. `gcloud builds submit
--ignore-file=.gcloudignore.build` uploads the tests as well, which the
build's test step runs. `gcloud meta list-files-for-upload` lists what gcloud
would upload from a folder (it reads the folder's .gcloudignore, which is
what --ignore-file replaces), and the uploaded source is installed into a
fresh virtual environment from requirements.txt alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import gcloud
from tests.support.cloudbuild import ROOT


def files_for_upload(directory: Path) -> set[str]:
    outcome = gcloud.run(["gcloud", "meta", "list-files-for-upload", str(directory)])
    assert outcome.returncode == 0, outcome.explain()
    return set(outcome.stdout.split())


SAMPLE_TREE = (
    "main.py",
    "requirements.txt",
    "checkout/create.py",
    "payments/store.py",
    "tests/test_deploy_config.py",
    "devtools/stripe_standin/__init__.py",
    "bench/load.py",
    "docs/deploy.md",
    "deploy/setup.sh",
    "deploy/env/api.yaml",
    ".deploy/env/api.yaml",
    "firebase.json",
    ".ci/run",
    "Makefile",
    "pytest.ini",
    "requirements-dev.txt",
    "cloudbuild.yaml",
    "README.md",
    ".venv/bin/python",
    "node_modules/pkg/index.js",
    ".local/payments.db",
    "__pycache__/main.cpython-314.pyc",
    "checkout/__pycache__/create.cpython-314.pyc",
    ".pytest_cache/README.md",
    ".env",
    ".git/config",
)
LOCAL_STATE = (".venv/", "node_modules/", ".local/", "__pycache__/", ".pytest_cache/", ".git/", ".deploy/")


def sample_tree(tmp_path: Path, ignore_file: str) -> Path:
    """A checkout after `make test` and a render, with `ignore_file` as its .gcloudignore (what --ignore-file does)."""
    root = tmp_path / "tree"
    for path in SAMPLE_TREE:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).touch()
    shutil.copy(ROOT / ".gitignore", root / ".gitignore")
    shutil.copy(ROOT / ignore_file, root / ".gcloudignore")
    return root


def test_function_upload_leaves_out_tests_tools_deploy_files_and_local_state(tmp_path):
    gcloud.require_gcloud()
    uploaded = files_for_upload(sample_tree(tmp_path, ".gcloudignore"))
    assert uploaded == {"main.py", "requirements.txt", "checkout/create.py", "payments/store.py"}


def test_build_upload_keeps_the_tests_and_leaves_out_local_state(tmp_path):
    gcloud.require_gcloud()
    uploaded = files_for_upload(sample_tree(tmp_path, ".gcloudignore.build"))
    # The test step runs `make test` and deploy/render.py, which need all of these...
    assert {
        "tests/test_deploy_config.py",
        "devtools/stripe_standin/__init__.py",
        "deploy/env/api.yaml",
        "Makefile",
        "pytest.ini",
        "requirements-dev.txt",
        "cloudbuild.yaml",
        ".gcloudignore",
    } <= uploaded
    # ...and recreates these itself.
    assert not [path for path in uploaded if any(f"/{state}" in f"/{path}" for state in LOCAL_STATE)]
    assert ".env" not in uploaded


def runtime_packages() -> set[str]:
    """This repository's packages that main.py loads, at import or when a store is opened."""
    listing = (
        "import importlib, json, sys, main\n"
        "for name in ('payments.firestore_store', 'payments.sqlite_store'): importlib.import_module(name)\n"
        "root = sys.argv[1]\n"
        "files = {name: getattr(module, '__file__', None) or '' for name, module in list(sys.modules.items())}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name, path in files.items()"
        " if path.startswith(root + '/') and '.' in name})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", listing, str(ROOT)], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    # Installed packages live under .venv/ here; only this repository's own packages count.
    return {name for name in json.loads(result.stdout) if (ROOT / name / "__init__.py").is_file()}


def test_function_upload_from_this_checkout_is_the_runtime_code():
    gcloud.require_gcloud()
    uploaded = files_for_upload(ROOT)
    packages = runtime_packages()
    needed = {"main.py", "requirements.txt"} | {
        str(path.relative_to(ROOT)) for package in packages for path in (ROOT / package).rglob("*.py")
    }
    assert needed <= uploaded
    extra = [
        path for path in uploaded if path not in ("main.py", "requirements.txt") and path.split("/")[0] not in packages
    ]
    assert extra == []


def test_uploaded_source_imports_with_only_requirements_txt_installed(tmp_path):
    """A fresh virtual environment, `pip install -r requirements.txt`, then import what the runtime imports.

    Needs PyPI (CI has it); pip's cache makes reruns quick.
    """
    gcloud.require_gcloud()
    source = tmp_path / "source"
    for path in files_for_upload(ROOT):
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, source / path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
            "requirements.txt",
        ],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    # main, plus what is imported only on first use: the stores, Secret Manager, email checks.
    imports = (
        "import main, functions_framework, payments.firestore_store, payments.sqlite_store, "
        "email_validator, google_crc32c, grpc; from google.cloud import secretmanager"
    )
    result = subprocess.run(
        [str(python), "-c", imports], cwd=source, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
