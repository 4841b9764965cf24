"""The served API, fuzzed against its description (openapi.yaml) with Schemathesis.

A real `functions-framework --target=api` process on 127.0.0.1, backed by the
Stripe stand-in and an SQLite store, gets requests generated from the
document: valid ones, invalid ones, boundary values, undeclared methods. For
each answer: no 5xx, JSON conforming to the document (status, headers,
body), and CORS headers where due. Webhook requests whose Stripe-Signature
has the documented shape are signed for real over the body sent, so events
get past verification; others stay as generated and must be refused.

Rate limits are set out of reach for the run (the 429 answer is still
described and checked by tests/test_rate_limits.py). The number of examples
is bounded so the run takes about a minute on two cores.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings

from common.serving import ROUTED_METHODS
from tests.conftest import FRONTEND_URL, signed_headers
from tests.support.served import serving, stack_env

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_PER_OPERATION = 1000


def document() -> dict:
    """openapi.yaml, for a deployment with a test key: its session ids are cs_test_… (cs_live_… is a 400)."""
    described = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    (session_id,) = [
        p
        for p in described["paths"]["/api/checkout/session-status"]["get"]["parameters"]
        if p.get("name") == "session_id"
    ]
    session_id["schema"]["pattern"] = "^cs_test_[A-Za-z0-9]{1,200}$"
    return described


CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            # What JSON Schema cannot say: whether an Origin is in ALLOWED_ORIGINS (403), whether a
            # session exists (404), a body's size in bytes (413). A 429 would mean the limits were reached.
            "positive_data_acceptance": {"expected-statuses": ["2xx", "403", "404", "409", "413"]},
            # Schemathesis's list, plus 413: an invalid body may also be too large, and size is checked first.
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "403",
                    "404",
                    "405",
                    "406",
                    "409",
                    "413",
                    "415",
                    "422",
                    "428",
                    "429",
                ]
            },
        },
        "operations": [
            {  # OPTIONS without Origin is not a preflight, and the document says 405.
                "include-method": "OPTIONS",
                "checks": {"missing_required_header": {"expected-statuses": ["405"]}},
            },
        ],
    }
)
schema = schemathesis.openapi.from_dict(document(), config=CONFIG)


@pytest.fixture(scope="module")
def api(stripe_server, tmp_path_factory):
    env = stack_env(
        stripe_server,
        tmp_path_factory.mktemp("fuzz") / "payments.db",
        RATE_LIMIT_CREATE="100000000/minute",
        RATE_LIMIT_STATUS="100000000/minute",
    )
    with serving(env) as served:
        yield served


SIGNATURE_SHAPE = re.compile(r"t=[0-9]{1,12}(,v1=[0-9a-f]{64})+")


class StripeSigner(requests.auth.AuthBase):
    """Re-sign a webhook request whose generated Stripe-Signature has the documented shape, over the exact body sent."""

    def __call__(self, request):
        header = request.headers.get("Stripe-Signature")
        if request.path_url == "/webhook" and header and SIGNATURE_SHAPE.fullmatch(header):
            body = request.body or b""
            try:
                text = body.decode("utf-8") if isinstance(body, bytes) else body
            except UnicodeDecodeError:
                return request  # Stripe signs text: such a body keeps its generated signature, and is refused
            request.headers["Stripe-Signature"] = signed_headers(text)["Stripe-Signature"]
        return request


@schemathesis.check
def cors_where_due(ctx, response, case):
    """Checkout paths name an allowed origin and no other; the webhook never sends CORS headers."""
    cors = {name for name in response.headers if name.lower().startswith("access-control-")}
    origin = (case.headers or {}).get("Origin")
    if response.request.method not in ROUTED_METHODS:
        return None  # refused by the server before any endpoint; no browser can send such a method
    if case.path == "/webhook" or origin is None:
        assert not cors, f"CORS headers without an allowed Origin: {sorted(cors)}"
    elif origin == FRONTEND_URL:  # errors too, so the page can read them
        assert response.headers.get("access-control-allow-origin") == [FRONTEND_URL]
        assert "Origin" in response.headers.get("vary", [""])[0]
    else:
        assert not cors, f"CORS headers for a foreign Origin: {sorted(cors)}"
    return None


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_the_served_api_keeps_its_description(case, api):
    case.call_and_validate(base_url=api.base_url, auth=StripeSigner(), timeout=15, additional_checks=[cors_where_due])
