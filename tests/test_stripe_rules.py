"""What the service knows about Stripe's API: the pinned version, the ui_mode it implies, id rules.

Stripe API 2026-03-25.dahlia renamed ui_mode "embedded" to "embedded_page";
sending the old name to a newer version fails. The rule lives in one place,
`stripe_rules.embedded_ui_mode`, and both sides of it are checked here against
the stand-in, which enforces each version's names as Stripe does.
"""

from __future__ import annotations

import string

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from checkout.create import session_params
from checkout.status import parse_session_id
from common import stripe_rules
from common.errors import InvalidRequest
from tests.test_http import ANY_TEXT


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


@pytest.mark.parametrize(
    "version, wrong", [("2026-02-25.clover", "embedded_page"), (stripe_rules.API_VERSION, "embedded")]
)
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


@pytest.mark.parametrize(
    "key, mode", [("sk_live_x", "live"), ("rk_live_x", "live"), ("sk_test_x", "test"), ("rk_test_x", "test")]
)
def test_a_key_carries_its_mode(key, mode):
    assert stripe_rules.key_mode(key) == mode


# -- properties of the id rules --------------------------------------------------------

ID_CHARACTERS = set(string.ascii_letters + string.digits + "_")
SESSION_IDS = st.from_regex(r"cs_(test|live)_[A-Za-z0-9]{1,200}", fullmatch=True)
# Ids and near misses: a valid id with text added before, inside or after it, and any text.
CANDIDATES = st.one_of(
    SESSION_IDS,
    st.builds(lambda a, b, c: a + b + c, ANY_TEXT, SESSION_IDS, ANY_TEXT),
    st.builds(lambda i, tail: i + tail, SESSION_IDS, st.sampled_from(["\n", "\r\n", "\x00", " ", "/", "%0A", "?"])),
    ANY_TEXT,
)


@given(CANDIDATES)
def test_a_session_id_is_ascii_letters_digits_and_underscores_only(value):
    if stripe_rules.is_id(stripe_rules.CHECKOUT_SESSION_ID, value):
        assert set(value) <= ID_CHARACTERS
        assert value.startswith(("cs_test_", "cs_live_")) and len(value) <= len("cs_test_") + 200


@given(SESSION_IDS)
def test_every_id_of_stripes_shape_is_an_id(value):
    assert stripe_rules.is_id(stripe_rules.CHECKOUT_SESSION_ID, value)


@given(CANDIDATES, st.sampled_from(["test", "live"]))
def test_the_status_endpoint_takes_an_id_of_its_mode_or_refuses_it(value, mode):
    try:
        parsed = parse_session_id(value, mode)
    except InvalidRequest as refused:
        assert len(str(refused)) < 100
    else:
        assert parsed == value
        assert stripe_rules.is_id(stripe_rules.CHECKOUT_SESSION_ID, value)
        assert stripe_rules.session_mode(value) == mode
