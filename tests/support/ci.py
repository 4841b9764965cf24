"""What a test does when a tool it needs is missing: skip on a developer's machine, fail in CI.

CI (`CI=true`, as `.ci/run` and the Cloud Build test step run) must never
pass with a part of the suite left out.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def missing(problem: str):
    """Skip the test with `problem` (one line), or fail it under CI."""
    if in_ci():
        pytest.fail(f"{problem} (CI must run these tests)", pytrace=False)
    pytest.skip(problem)
