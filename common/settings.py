"""Settings: every environment variable the service reads, parsed and validated here.

Cloud Run passes configuration as environment variables: plain values with
--set-env-vars (or an env-vars file), secrets with --set-secrets. This module
is the only reader of the environment, so a typo fails with a message naming
the setting instead of a confusing error deep inside a request. Secret
values stay out of every repr; a value shaped like a Secret Manager version
name is resolved later, by `common.secrets`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from common.errors import SettingError
from common.ratelimit import Rate, parse_rates

# Where the embedded store lives when nothing else is chosen: git-ignored.
DEFAULT_SQLITE_PATH = Path(__file__).resolve().parent.parent / ".local" / "payments.db"

DEFAULTS = {
    "CHECKOUT_RETURN_PATH": "/hero-me",
    "RATE_LIMIT_CREATE": "10/minute",
    "RATE_LIMIT_STATUS": "120/minute",
    "RATE_LIMIT_STORAGE_URI": "memory://",
    "RATE_LIMIT_FAIL_OPEN_CREATE": "true",
    "TRUSTED_PROXY_HOPS": "1",
    "APP_CHECK_ON_STATUS": "false",
    "APP_CHECK_JWKS_URL": "https://firebaseappcheck.googleapis.com/v1/jwks",
    "PAYMENTS_COLLECTION": "payments",
    "EVENTS_COLLECTION": "stripe_events",
    "PAYMENT_INTENTS_COLLECTION": "payment_intents",
}

# Every environment variable the service reads. Tools and tests start
# processes with none of these but their own.
NAMES = (
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "FRONTEND_URL",
    "CHECKOUT_RETURN_PATH",
    "ALLOWED_ORIGINS",
    "STRIPE_API_BASE",
    "RATE_LIMIT_CREATE",
    "RATE_LIMIT_STATUS",
    "RATE_LIMIT_STORAGE_URI",
    "RATE_LIMIT_FAIL_OPEN_CREATE",
    "TRUSTED_PROXY_HOPS",
    "APP_CHECK_PROJECT_NUMBER",
    "APP_CHECK_ON_STATUS",
    "APP_CHECK_JWKS_URL",
    "PAYMENTS_STORE",
    "PAYMENTS_COLLECTION",
    "EVENTS_COLLECTION",
    "PAYMENT_INTENTS_COLLECTION",
    "SECRET_MANAGER_ENDPOINT",
    "K_SERVICE",
    "K_REVISION",
    "CLOUD_RUN_JOB",
    "CLOUD_RUN_EXECUTION",
    "FIRESTORE_EMULATOR_HOST",
    "GOOGLE_CLOUD_PROJECT",
)


@dataclass(frozen=True)
class StoreChoice:
    """Which payment store: Firestore, or an SQLite file at `path`."""

    kind: str  # "firestore" or "sqlite"
    path: Path | None = None

    def __str__(self) -> str:
        return "firestore" if self.kind == "firestore" else f"sqlite://{self.path}"


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one instance."""

    frontend_url: str | None = None
    checkout_return_path: str = DEFAULTS["CHECKOUT_RETURN_PATH"]
    allowed_origins: frozenset[str] = frozenset()
    stripe_api_base: str | None = None
    rate_limit_create: tuple[Rate, ...] = ()
    rate_limit_status: tuple[Rate, ...] = ()
    rate_limit_storage_uri: str = DEFAULTS["RATE_LIMIT_STORAGE_URI"]
    # Whether create lets requests through (counted by this instance alone) when shared counts are unreachable.
    rate_limit_fail_open_create: bool = True
    trusted_proxy_hops: int = 1
    # Firebase App Check: verified on create when the project number is set, and on status too if asked.
    app_check_project_number: str | None = None
    app_check_on_status: bool = False
    app_check_jwks_url: str = DEFAULTS["APP_CHECK_JWKS_URL"]
    payments_store: StoreChoice = StoreChoice("sqlite", DEFAULT_SQLITE_PATH)
    payments_collection: str = DEFAULTS["PAYMENTS_COLLECTION"]
    events_collection: str = DEFAULTS["EVENTS_COLLECTION"]
    payment_intents_collection: str = DEFAULTS["PAYMENT_INTENTS_COLLECTION"]
    secret_manager_endpoint: str | None = None
    google_cloud_project: str | None = None
    firestore_emulator_host: str | None = None
    # Set by Cloud Run: which service and revision this instance serves, or
    # which job and execution this task belongs to.
    service: str | None = None
    revision: str | None = None
    # Secrets as configured: the value itself, or a Secret Manager version name.
    stripe_secret_key: str = field(default="", repr=False)
    stripe_webhook_secret: str = field(default="", repr=False)

    @property
    def return_url(self) -> str:
        """Where Stripe sends the buyer after paying; Stripe fills in `{CHECKOUT_SESSION_ID}`."""
        if not self.frontend_url:
            raise SettingError("FRONTEND_URL", "is not set")
        return self.frontend_url + self.checkout_return_path + "?session_id={CHECKOUT_SESSION_ID}"

    @property
    def allows_any_origin(self) -> bool:
        return "*" in self.allowed_origins


def from_environment() -> Settings:
    """The settings of this process: the one place that reads its environment."""
    return from_env(os.environ)


def from_env(env: Mapping[str, str]) -> Settings:
    """Parse and validate every setting in `env`; SettingError names the first bad one."""

    def get(name: str) -> str:
        return (env.get(name) or DEFAULTS.get(name, "")).strip()

    frontend_url = _frontend_url(get("FRONTEND_URL"))
    app_check_project_number = _project_number(get("APP_CHECK_PROJECT_NUMBER"))
    app_check_on_status = _boolean("APP_CHECK_ON_STATUS", get("APP_CHECK_ON_STATUS"))
    if app_check_on_status and not app_check_project_number:
        raise SettingError("APP_CHECK_ON_STATUS", "needs APP_CHECK_PROJECT_NUMBER to be set")
    emulator = get("FIRESTORE_EMULATOR_HOST") or None
    return Settings(
        frontend_url=frontend_url,
        checkout_return_path=_return_path(get("CHECKOUT_RETURN_PATH")),
        allowed_origins=_allowed_origins(get("ALLOWED_ORIGINS"), frontend_url),
        stripe_api_base=_base_url("STRIPE_API_BASE", get("STRIPE_API_BASE")) or None,
        rate_limit_create=_rates("RATE_LIMIT_CREATE", get("RATE_LIMIT_CREATE")),
        rate_limit_status=_rates("RATE_LIMIT_STATUS", get("RATE_LIMIT_STATUS")),
        rate_limit_storage_uri=_storage_uri(get("RATE_LIMIT_STORAGE_URI")),
        rate_limit_fail_open_create=_boolean("RATE_LIMIT_FAIL_OPEN_CREATE", get("RATE_LIMIT_FAIL_OPEN_CREATE")),
        trusted_proxy_hops=_non_negative_int("TRUSTED_PROXY_HOPS", get("TRUSTED_PROXY_HOPS")),
        app_check_project_number=app_check_project_number,
        app_check_on_status=app_check_on_status,
        app_check_jwks_url=_jwks_url(get("APP_CHECK_JWKS_URL")),
        payments_store=_store(
            get("PAYMENTS_STORE"), on_google_cloud=bool(get("K_SERVICE") or get("CLOUD_RUN_JOB")), emulator=emulator
        ),
        payments_collection=_collection("PAYMENTS_COLLECTION", get("PAYMENTS_COLLECTION")),
        events_collection=_collection("EVENTS_COLLECTION", get("EVENTS_COLLECTION")),
        payment_intents_collection=_collection("PAYMENT_INTENTS_COLLECTION", get("PAYMENT_INTENTS_COLLECTION")),
        secret_manager_endpoint=get("SECRET_MANAGER_ENDPOINT") or None,
        google_cloud_project=get("GOOGLE_CLOUD_PROJECT") or None,
        firestore_emulator_host=emulator,
        service=get("K_SERVICE") or get("CLOUD_RUN_JOB") or None,
        revision=get("K_REVISION") or get("CLOUD_RUN_EXECUTION") or None,
        stripe_secret_key=get("STRIPE_SECRET_KEY"),
        stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET"),
    )


def _frontend_url(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingError("FRONTEND_URL", "must be an http(s) URL without query or fragment")
    return value.rstrip("/")


def _return_path(value: str) -> str:
    if not value.startswith("/") or "?" in value or "#" in value:
        raise SettingError("CHECKOUT_RETURN_PATH", "must be a path starting with / and without a query")
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _allowed_origins(value: str, frontend_url: str | None) -> frozenset[str]:
    if not value:
        return frozenset([_origin(frontend_url)] if frontend_url else [])
    origins = set()
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        if item != "*" and _origin(item) != item.rstrip("/"):
            raise SettingError("ALLOWED_ORIGINS", "must list origins like https://app.example.com, or *")
        origins.add(item.rstrip("/"))
    return frozenset(origins)


def _base_url(name: str, value: str) -> str:
    if value and _origin(value) != value.rstrip("/"):
        raise SettingError(name, "must be a base URL like http://localhost:12111")
    return value.rstrip("/")


def _rates(name: str, value: str) -> tuple[Rate, ...]:
    try:
        return parse_rates(value)
    except ValueError:
        raise SettingError(name, "must be a rate like 10/minute (several may be joined with ;)") from None


def _storage_uri(value: str) -> str:
    if "://" not in value:
        raise SettingError(
            "RATE_LIMIT_STORAGE_URI", "must be a storage URI such as memory://, firestore:// or redis://host:6379"
        )
    scheme, rest = value.split("://", 1)
    if scheme == "firestore" and rest:
        _collection("RATE_LIMIT_STORAGE_URI", rest)  # firestore://COLLECTION names one collection
    return value


def _boolean(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise SettingError(name, "must be true or false")
    return value.lower() == "true"


def _project_number(value: str) -> str | None:
    """A Firebase project number (digits), not the project id: App Check tokens name the number."""
    if value and not (value.isascii() and value.isdigit()):
        raise SettingError("APP_CHECK_PROJECT_NUMBER", "must be the project number (digits), not the project id")
    return value or None


def _jwks_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingError("APP_CHECK_JWKS_URL", "must be an http(s) URL")
    return value


def _non_negative_int(name: str, value: str) -> int:
    if not value.isdigit():
        raise SettingError(name, "must be a whole number of 0 or more")
    return int(value)


def _store(value: str, on_google_cloud: bool, emulator: str | None) -> StoreChoice:
    """firestore, or sqlite:///absolute/path.db (the path of the URL, as in file:///…)."""
    if not value:
        return StoreChoice("firestore") if on_google_cloud or emulator else StoreChoice("sqlite", DEFAULT_SQLITE_PATH)
    if value == "firestore":
        return StoreChoice("firestore")
    parts = urlsplit(value)
    if parts.scheme == "sqlite" and not parts.netloc and parts.path.startswith("/") and parts.path.strip("/"):
        return StoreChoice("sqlite", Path("/" + parts.path.lstrip("/")))
    raise SettingError("PAYMENTS_STORE", "must be firestore or sqlite:///absolute/path/to/file.db")


def _collection(name: str, value: str) -> str:
    if not value or "/" in value or value.startswith("__"):
        raise SettingError(name, "must be a Firestore collection id (no '/', not starting with __)")
    return value
