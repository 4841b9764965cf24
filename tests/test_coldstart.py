"""The cold-start trick in common/coldstart.py does what it says, and nothing more."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_loading_main_does_not_import_requests():
    assert run("import sys, main; print('requests' in sys.modules)") == "False"


def test_requests_stays_importable_after_main():
    assert run("import main, requests; print(requests.__name__)") == "requests"


def test_the_stripe_sdk_is_fully_there():
    assert run("import main, stripe; print(stripe.StripeClient.__name__, stripe.WebhookSignature.__name__)") == (
        "StripeClient WebhookSignature"
    )
