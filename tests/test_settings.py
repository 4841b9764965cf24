"""Settings are parsed once and refuse bad values with a message naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import settings
from common.errors import SettingError
from common.ratelimit import Rate

BASE = {"FRONTEND_URL": "https://herome.example", "STRIPE_SECRET_KEY": "sk_test_abc"}


def load(**overrides):
    return settings.from_env({**BASE, **overrides})


def test_defaults_fill_what_is_not_set():
    loaded = load()

    assert loaded.checkout_return_path == "/hero-me"
    assert loaded.rate_limit_create == (Rate(10, 60, "10/minute"),)
    assert loaded.rate_limit_status == (Rate(120, 60, "120/minute"),)
    assert loaded.rate_limit_storage_uri == "memory://"
    assert loaded.rate_limit_fail_open_create is True
    assert loaded.trusted_proxy_hops == 1
    assert loaded.app_check_project_number is None and loaded.app_check_on_status is False
    assert loaded.app_check_jwks_url == "https://firebaseappcheck.googleapis.com/v1/jwks"
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
        ("RATE_LIMIT_CREATE", "ten per minute"),
        ("RATE_LIMIT_STORAGE_URI", "localhost:6379"),
        ("RATE_LIMIT_STORAGE_URI", "firestore://limits/nested"),
        ("RATE_LIMIT_FAIL_OPEN_CREATE", "maybe"),
        ("APP_CHECK_PROJECT_NUMBER", "herome-example"),
        ("APP_CHECK_ON_STATUS", "yes"),
        ("APP_CHECK_JWKS_URL", "firebaseappcheck.googleapis.com/v1/jwks"),
        ("PAYMENTS_STORE", "postgres://db"),
        ("PAYMENTS_STORE", "sqlite://relative.db"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(name, value):
    with pytest.raises(SettingError) as refused:
        load(**{name: value})

    assert refused.value.name == name


def test_app_check_on_status_needs_the_project_number():
    with pytest.raises(SettingError) as refused:
        load(APP_CHECK_ON_STATUS="true")

    assert refused.value.name == "APP_CHECK_ON_STATUS"
    assert load(APP_CHECK_ON_STATUS="true", APP_CHECK_PROJECT_NUMBER="123456789012").app_check_on_status


def test_the_sqlite_store_path_is_the_urls_path():
    assert load(PAYMENTS_STORE="sqlite:///tmp/x.db").payments_store == settings.StoreChoice("sqlite", Path("/tmp/x.db"))
    assert load(PAYMENTS_STORE="sqlite:////tmp/x.db").payments_store == settings.StoreChoice(
        "sqlite", Path("/tmp/x.db")
    )


def test_the_store_is_firestore_on_google_cloud_and_on_the_emulator():
    assert load(K_SERVICE="payments-api").payments_store.kind == "firestore"
    assert load(CLOUD_RUN_JOB="payments-reconcile").payments_store.kind == "firestore"
    assert load(FIRESTORE_EMULATOR_HOST="127.0.0.1:8080").payments_store.kind == "firestore"
    assert load().payments_store.kind == "sqlite"


def test_a_job_names_itself_as_a_service_does():
    job = load(CLOUD_RUN_JOB="payments-reconcile", CLOUD_RUN_EXECUTION="payments-reconcile-x7k2p")
    service = load(K_SERVICE="payments-api", K_REVISION="payments-api-00007-abc")

    assert (job.service, job.revision) == ("payments-reconcile", "payments-reconcile-x7k2p")
    assert (service.service, service.revision) == ("payments-api", "payments-api-00007-abc")


def test_secrets_stay_out_of_the_repr():
    loaded = load(STRIPE_SECRET_KEY="sk_test_verysecret", STRIPE_WEBHOOK_SECRET="whsec_verysecret")

    assert "verysecret" not in repr(loaded) and "verysecret" not in str(loaded)
    assert loaded.stripe_secret_key == "sk_test_verysecret"


def test_the_environment_is_read_only_through_from_environment(monkeypatch):
    monkeypatch.setenv("FRONTEND_URL", "https://from-the-environment.example")

    assert settings.from_environment().frontend_url == "https://from-the-environment.example"
