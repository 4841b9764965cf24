"""Settings are parsed once and refuse bad values with a message naming the setting."""

from __future__ import annotations

import pytest

from common import settings
from common.errors import SettingError

BASE = {"FRONTEND_URL": "https://herome.example", "STRIPE_SECRET_KEY": "sk_test_abc"}


def load(**overrides):
    return settings.load({**BASE, **overrides})


def test_defaults_fill_what_is_not_set():
    loaded = load()

    assert loaded.checkout_return_path == "/hero-me"
    assert loaded.rate_limit_create == "10/minute"
    assert loaded.rate_limit_status == "120/minute"
    assert loaded.rate_limit_storage_uri == "memory://"
    assert loaded.trusted_proxy_hops == 1
    assert loaded.payments_collection == "payments"
    assert loaded.events_collection == "stripe_events"


def test_allowed_origins_default_to_the_frontends_origin():
    assert load(FRONTEND_URL="https://herome.example/app/").allowed_origins == {"https://herome.example"}


def test_return_url_joins_frontend_path_and_placeholder():
    assert load().return_url == "https://herome.example/hero-me?session_id={CHECKOUT_SESSION_ID}"


@pytest.mark.parametrize(
    "name, value",
    [
        ("FRONTEND_URL", "herome.example"),
        ("FRONTEND_URL", "https://herome.example/?x=1"),
        ("CHECKOUT_RETURN_PATH", "hero-me"),
        ("ALLOWED_ORIGINS", "https://herome.example/path"),
        ("STRIPE_API_BASE", "localhost:12111"),
        ("TRUSTED_PROXY_HOPS", "-1"),
        ("PAYMENTS_COLLECTION", "a/b"),
        ("EVENTS_COLLECTION", "__reserved__"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(name, value):
    with pytest.raises(SettingError) as refused:
        load(**{name: value})

    assert name in refused.value.message
    assert refused.value.status == 500


def test_a_missing_secret_names_the_setting():
    with pytest.raises(SettingError, match="STRIPE_WEBHOOK_SECRET is not set"):
        load().stripe_webhook_secrets()


def test_a_key_that_is_not_a_stripe_key_is_refused_without_quoting_it():
    with pytest.raises(SettingError) as refused:
        load(STRIPE_SECRET_KEY="pk_test_publishable").stripe_secret_key()

    assert "STRIPE_SECRET_KEY" in refused.value.message
    assert "pk_test_publishable" not in refused.value.message


def test_several_webhook_secrets_are_accepted_for_rolling():
    loaded = load(STRIPE_WEBHOOK_SECRET="whsec_old, whsec_new")

    assert loaded.stripe_webhook_secrets() == ("whsec_old", "whsec_new")


def test_a_webhook_secret_that_is_not_whsec_is_refused():
    with pytest.raises(SettingError, match="STRIPE_WEBHOOK_SECRET"):
        load(STRIPE_WEBHOOK_SECRET="whsec_ok,oops").stripe_webhook_secrets()
