"""What the service knows about Stripe's API: the pinned version, the ui_mode it implies, id rules.

Stripe API 2026-03-25.dahlia renamed ui_mode "embedded" to "embedded_page";
sending the old name to a newer version fails. The rule lives in one place,
`stripe_rules.embedded_ui_mode`, and both sides of it are checked here against
the stand-in, which enforces each version's names as Stripe does.
"""

from __future__ import annotations

import pytest
import stripe

from checkout.create import session_params
from common import stripe_rules


def test_the_pinned_version_is_on_or_after_the_rename():
    assert stripe_rules.API_VERSION[:10] >= stripe_rules.EMBEDDED_PAGE_SINCE
    assert stripe_rules.embedded_ui_mode() == "embedded_page"


@pytest.mark.parametrize(
    "version, ui_mode",
    [
        ("2025-09-30.clover", "embedded"),
        ("2026-02-25.clover", "embedded"),
        ("2026-03-25.dahlia", "embedded_page"),
        ("2026-10-28.endive", "embedded_page"),
    ],
)
def test_ui_mode_follows_the_api_version(version, ui_mode):
    assert stripe_rules.embedded_ui_mode(version) == ui_mode


def test_the_client_sends_the_pinned_version(client, standin):
    client.post("/api/checkout/embedded-session", json={})

    assert standin.requests[0].headers["Stripe-Version"] == stripe_rules.API_VERSION


def _client(standin, version):
    return stripe.StripeClient("sk_test_x", stripe_version=version, base_addresses={"api": standin.base_url})


@pytest.mark.parametrize("version", ["2026-02-25.clover", stripe_rules.API_VERSION])
def test_stripe_accepts_the_derived_ui_mode_on_either_side_of_the_rename(standin, version):
    params = session_params("https://herome.example/hero-me?session_id={CHECKOUT_SESSION_ID}")
    params["ui_mode"] = stripe_rules.embedded_ui_mode(version)

    session = _client(standin, version).v1.checkout.sessions.create(params=params)

    assert session.client_secret


@pytest.mark.parametrize("version, wrong", [("2026-02-25.clover", "embedded_page"), (stripe_rules.API_VERSION, "embedded")])
def test_stripe_rejects_the_other_sides_ui_mode(standin, version, wrong):
    params = session_params("https://herome.example/hero-me?session_id={CHECKOUT_SESSION_ID}")
    params["ui_mode"] = wrong

    with pytest.raises(stripe.InvalidRequestError) as rejected:
        _client(standin, version).v1.checkout.sessions.create(params=params)

    assert rejected.value.param == "ui_mode"


@pytest.mark.parametrize(
    "value",
    ["cs_test_abc\n", "cs_test_abc\r\n", " cs_test_abc", "cs_test_ab-c", "cs_test_", "cs_test_" + "a" * 201, None, 7],
    ids=["trailing newline", "trailing CRLF", "leading space", "hyphen", "no body", "too long", "None", "number"],
)
def test_a_malformed_session_id_is_not_an_id(value):
    assert not stripe_rules.is_id(stripe_rules.CHECKOUT_SESSION_ID, value)


def test_a_session_id_carries_its_mode():
    assert stripe_rules.session_mode("cs_live_a1B2") == "live"
    assert stripe_rules.session_mode("cs_test_a1B2") == "test"


@pytest.mark.parametrize("key, mode", [("sk_live_x", "live"), ("rk_live_x", "live"), ("sk_test_x", "test"),
                                       ("rk_test_x", "test")])
def test_a_key_carries_its_mode(key, mode):
    assert stripe_rules.key_mode(key) == mode
