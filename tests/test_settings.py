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


URL_PROBLEM = "must be an http(s) URL without query or fragment"
PATH_PROBLEM = "must be a path starting with / and without a query"
ORIGINS_PROBLEM = "must list origins like https://app.example.com, or *"
RATE_PROBLEM = "must be a rate like 10/minute (several may be joined with ;)"
COLLECTION_PROBLEM = "must be a Firestore collection id (no '/', not starting with __)"
STORE_PROBLEM = "must be firestore or sqlite:///absolute/path/to/file.db"


@pytest.mark.parametrize(
    "name, value, problem",
    [
        ("FRONTEND_URL", "herome.example", URL_PROBLEM),
        ("FRONTEND_URL", "ftp://herome.example", URL_PROBLEM),
        ("FRONTEND_URL", "https://", URL_PROBLEM),
        ("FRONTEND_URL", "https://herome.example/?x=1", URL_PROBLEM),
        ("FRONTEND_URL", "https://herome.example/#pay", URL_PROBLEM),
        ("CHECKOUT_RETURN_PATH", "hero-me", PATH_PROBLEM),
        ("CHECKOUT_RETURN_PATH", "/hero-me?step=2", PATH_PROBLEM),
        ("CHECKOUT_RETURN_PATH", "/hero-me#paid", PATH_PROBLEM),
        ("ALLOWED_ORIGINS", "https://herome.example/path", ORIGINS_PROBLEM),
        ("ALLOWED_ORIGINS", "https://a.example, herome.example", ORIGINS_PROBLEM),
        ("STRIPE_API_BASE", "localhost:12111", "must be a base URL like http://localhost:12111"),
        ("STRIPE_API_BASE", "http://localhost:12111/v1", "must be a base URL like http://localhost:12111"),
        ("TRUSTED_PROXY_HOPS", "-1", "must be a whole number of 0 or more"),
        ("TRUSTED_PROXY_HOPS", "one", "must be a whole number of 0 or more"),
        ("PAYMENTS_COLLECTION", "a/b", COLLECTION_PROBLEM),
        ("EVENTS_COLLECTION", "__reserved__", COLLECTION_PROBLEM),
        ("PAYMENT_INTENTS_COLLECTION", "intents/x", COLLECTION_PROBLEM),
        ("RATE_LIMIT_CREATE", "ten per minute", RATE_PROBLEM),
        ("RATE_LIMIT_STATUS", "120/fortnight", RATE_PROBLEM),
        (
            "RATE_LIMIT_STORAGE_URI",
            "localhost:6379",
            "must be a storage URI such as memory://, firestore:// or redis://host:6379",
        ),
        ("RATE_LIMIT_STORAGE_URI", "firestore://limits/nested", COLLECTION_PROBLEM),
        ("RATE_LIMIT_STORAGE_URI", "firestore://limits://nested", COLLECTION_PROBLEM),
        ("RATE_LIMIT_FAIL_OPEN_CREATE", "maybe", "must be true or false"),
        ("APP_CHECK_PROJECT_NUMBER", "herome-example", "must be the project number (digits), not the project id"),
        ("APP_CHECK_PROJECT_NUMBER", "\uff11\uff12\uff13", "must be the project number (digits), not the project id"),
        ("APP_CHECK_ON_STATUS", "yes", "must be true or false"),
        ("APP_CHECK_JWKS_URL", "firebaseappcheck.googleapis.com/v1/jwks", "must be an http(s) URL"),
        ("APP_CHECK_JWKS_URL", "https://", "must be an http(s) URL"),
        ("PAYMENTS_STORE", "postgres://db", STORE_PROBLEM),
        ("PAYMENTS_STORE", "sqlite://relative.db", STORE_PROBLEM),
        ("PAYMENTS_STORE", "sqlite:///", STORE_PROBLEM),
        ("PAYMENTS_STORE", "sqlite:relative.db", STORE_PROBLEM),
    ],
)
def test_a_bad_value_is_refused_with_a_message_naming_the_setting(name, value, problem):
    with pytest.raises(SettingError) as refused:
        load(**{name: value})

    assert (refused.value.name, refused.value.problem) == (name, problem)
    assert str(refused.value) == f"{name} {problem}"


def test_each_setting_is_read_from_its_own_variable():
    loaded = load(
        FRONTEND_URL="https://herome.example/",
        CHECKOUT_RETURN_PATH="/paid",
        ALLOWED_ORIGINS="https://a.example, ,https://b.example/",
        STRIPE_API_BASE="http://127.0.0.1:12111/",
        RATE_LIMIT_CREATE="3/second",
        RATE_LIMIT_STATUS="4/hour",
        RATE_LIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
        RATE_LIMIT_FAIL_OPEN_CREATE="FALSE",
        TRUSTED_PROXY_HOPS="0",
        APP_CHECK_PROJECT_NUMBER="123456789012",
        APP_CHECK_ON_STATUS="True",
        APP_CHECK_JWKS_URL="http://127.0.0.1:9999/jwks",
        PAYMENTS_STORE="firestore",
        PAYMENTS_COLLECTION="p",
        EVENTS_COLLECTION="e",
        PAYMENT_INTENTS_COLLECTION="i",
        SECRET_MANAGER_ENDPOINT="127.0.0.1:8443",
        GOOGLE_CLOUD_PROJECT="hero-me",
        FIRESTORE_EMULATOR_HOST="127.0.0.1:8080",
        STRIPE_WEBHOOK_SECRET="whsec_abc",
    )

    assert loaded == settings.Settings(
        frontend_url="https://herome.example",
        checkout_return_path="/paid",
        allowed_origins=frozenset({"https://a.example", "https://b.example"}),
        stripe_api_base="http://127.0.0.1:12111",
        rate_limit_create=(Rate(3, 1, "3/second"),),
        rate_limit_status=(Rate(4, 3600, "4/hour"),),
        rate_limit_storage_uri="redis://127.0.0.1:6379/0",
        rate_limit_fail_open_create=False,
        trusted_proxy_hops=0,
        app_check_project_number="123456789012",
        app_check_on_status=True,
        app_check_jwks_url="http://127.0.0.1:9999/jwks",
        payments_store=settings.StoreChoice("firestore"),
        payments_collection="p",
        events_collection="e",
        payment_intents_collection="i",
        secret_manager_endpoint="127.0.0.1:8443",
        google_cloud_project="hero-me",
        firestore_emulator_host="127.0.0.1:8080",
        stripe_secret_key="sk_test_abc",
        stripe_webhook_secret="whsec_abc",
    )


def test_what_is_not_set_is_none_or_empty():
    loaded = settings.from_env({})

    assert (loaded.frontend_url, loaded.stripe_api_base, loaded.app_check_project_number) == (None, None, None)
    assert (loaded.secret_manager_endpoint, loaded.google_cloud_project, loaded.firestore_emulator_host) == (
        None,
        None,
        None,
    )
    assert (loaded.service, loaded.revision) == (None, None)
    assert (loaded.stripe_secret_key, loaded.stripe_webhook_secret) == ("", "")
    assert loaded.allowed_origins == frozenset()
    assert loaded.payments_store == settings.StoreChoice("sqlite", settings.DEFAULT_SQLITE_PATH)


def test_values_are_read_without_surrounding_blanks():
    assert load(TRUSTED_PROXY_HOPS=" 2 ", FRONTEND_URL=" https://herome.example ").trusted_proxy_hops == 2


def test_any_origin_is_allowed_with_a_star():
    assert load(ALLOWED_ORIGINS="*").allows_any_origin
    assert not load(ALLOWED_ORIGINS="https://herome.example").allows_any_origin


def test_a_return_url_without_a_frontend_is_a_setting_error():
    with pytest.raises(SettingError) as refused:
        _ = settings.from_env({}).return_url

    assert str(refused.value) == "FRONTEND_URL is not set"


@pytest.mark.parametrize("value", ["memory://", "firestore://", "firestore://rate_limits", "redis://127.0.0.1:6379/0"])
def test_each_kind_of_rate_limit_storage_is_accepted(value):
    assert load(RATE_LIMIT_STORAGE_URI=value).rate_limit_storage_uri == value


def test_a_store_choice_reads_as_its_setting():
    assert str(settings.StoreChoice("firestore")) == "firestore"
    assert str(settings.StoreChoice("sqlite", Path("/var/lib/payments.db"))) == "sqlite:///var/lib/payments.db"


def test_app_check_on_status_needs_the_project_number():
    with pytest.raises(SettingError) as refused:
        load(APP_CHECK_ON_STATUS="true")

    assert str(refused.value) == "APP_CHECK_ON_STATUS needs APP_CHECK_PROJECT_NUMBER to be set"
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


def test_urls_keep_their_last_character_and_lose_only_trailing_slashes():
    loaded = load(
        FRONTEND_URL="http://localhost:5173/X/",
        STRIPE_API_BASE="http://standin-X/",
        ALLOWED_ORIGINS="http://devbox-X/",
        PAYMENTS_STORE="sqlite:///X",
    )

    assert loaded.frontend_url == "http://localhost:5173/X"
    assert loaded.stripe_api_base == "http://standin-X"
    assert loaded.allowed_origins == {"http://devbox-X"}
    assert loaded.payments_store == settings.StoreChoice("sqlite", Path("/X"))


def test_an_sqlite_path_keeps_its_first_character():
    assert load(PAYMENTS_STORE="sqlite:///Xdata.db").payments_store == settings.StoreChoice("sqlite", Path("/Xdata.db"))
