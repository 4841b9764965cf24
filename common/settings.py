"""Settings, read from the environment once per instance and validated together.

Cloud Functions and Cloud Run pass configuration as environment variables:
plain values with --set-env-vars, secrets with --set-secrets. Every setting is
parsed here, so a typo fails with a message naming the setting instead of a
confusing error deep inside a request. Settings a given function does not use
may be absent; asking for a missing one raises `SettingError` (HTTP 500).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from common import secrets
from common.errors import SettingError

DEFAULTS = {
    "CHECKOUT_RETURN_PATH": "/hero-me",
    "RATE_LIMIT_CREATE": "10/minute",
    "RATE_LIMIT_STATUS": "120/minute",
    "RATE_LIMIT_STORAGE_URI": "memory://",
    "TRUSTED_PROXY_HOPS": "1",
    "PAYMENTS_COLLECTION": "payments",
    "EVENTS_COLLECTION": "stripe_events",
}

# Every environment variable the service reads: the settings above, the
# platform's (which store and project to use, functions-framework's serving
# threads), so tools and tests can start a process with none but their own.
NAMES = (
    "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "FRONTEND_URL", "CHECKOUT_RETURN_PATH", "ALLOWED_ORIGINS",
    "STRIPE_API_BASE", "RATE_LIMIT_CREATE", "RATE_LIMIT_STATUS", "RATE_LIMIT_STORAGE_URI", "TRUSTED_PROXY_HOPS",
    "PAYMENTS_STORE", "PAYMENTS_COLLECTION", "EVENTS_COLLECTION", "SECRET_MANAGER_ENDPOINT",
    "K_SERVICE", "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "THREADS", "WORKERS",
)


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one instance."""

    env: dict
    frontend_url: str | None
    checkout_return_path: str
    allowed_origins: frozenset[str]
    stripe_api_base: str | None
    rate_limit_create: str
    rate_limit_status: str
    rate_limit_storage_uri: str
    trusted_proxy_hops: int
    payments_store: str | None
    payments_collection: str
    events_collection: str
    secret_manager_endpoint: str | None

    @property
    def return_url(self) -> str:
        """Where Stripe sends the buyer after paying.

        `{CHECKOUT_SESSION_ID}` is sent literally: Stripe substitutes the id.
        """
        if not self.frontend_url:
            raise SettingError("FRONTEND_URL", "is not set")
        return self.frontend_url + self.checkout_return_path + "?session_id={CHECKOUT_SESSION_ID}"

    @property
    def allows_any_origin(self) -> bool:
        return "*" in self.allowed_origins

    def stripe_secret_key(self) -> str:
        key = self._secret("STRIPE_SECRET_KEY")
        if not key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
            raise SettingError("STRIPE_SECRET_KEY", "is not a Stripe secret key (sk_… or rk_…)")
        return key

    def stripe_webhook_secrets(self) -> tuple[str, ...]:
        """All accepted endpoint secrets: more than one while a secret is rolled."""
        values = tuple(s.strip() for s in self._secret("STRIPE_WEBHOOK_SECRET").split(",") if s.strip())
        if not values or not all(v.startswith("whsec_") for v in values):
            raise SettingError(
                "STRIPE_WEBHOOK_SECRET", "must be one or more comma-separated whsec_… signing secrets"
            )
        return values

    def _secret(self, name: str) -> str:
        value = self.env.get(name, "").strip()
        if not value:
            raise SettingError(name, "is not set")
        return secrets.resolve(name, value, self.secret_manager_endpoint)


def load(env: dict | None = None) -> Settings:
    """Parse and validate settings from `env` (default: the process environment)."""
    env = dict(os.environ if env is None else env)

    def get(name: str) -> str:
        return (env.get(name) or DEFAULTS.get(name, "")).strip()

    frontend_url = _frontend_url(get("FRONTEND_URL"))
    return Settings(
        env=env,
        frontend_url=frontend_url,
        checkout_return_path=_return_path(get("CHECKOUT_RETURN_PATH")),
        allowed_origins=_allowed_origins(get("ALLOWED_ORIGINS"), frontend_url),
        stripe_api_base=_base_url("STRIPE_API_BASE", get("STRIPE_API_BASE")) or None,
        rate_limit_create=get("RATE_LIMIT_CREATE"),
        rate_limit_status=get("RATE_LIMIT_STATUS"),
        rate_limit_storage_uri=get("RATE_LIMIT_STORAGE_URI"),
        trusted_proxy_hops=_non_negative_int("TRUSTED_PROXY_HOPS", get("TRUSTED_PROXY_HOPS")),
        payments_store=get("PAYMENTS_STORE") or None,
        payments_collection=_collection("PAYMENTS_COLLECTION", get("PAYMENTS_COLLECTION")),
        events_collection=_collection("EVENTS_COLLECTION", get("EVENTS_COLLECTION")),
        secret_manager_endpoint=get("SECRET_MANAGER_ENDPOINT") or None,
    )


@functools.cache
def get() -> Settings:
    """The instance's settings, parsed on first use.

    A failed parse is not cached, so a fixed deployment recovers without a
    restart, and every request meanwhile gets the same clear 500.
    """
    return load()


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


def _non_negative_int(name: str, value: str) -> int:
    if not value.isdigit():
        raise SettingError(name, "must be a whole number of 0 or more")
    return int(value)


def _collection(name: str, value: str) -> str:
    if not value or "/" in value or value.startswith("__"):
        raise SettingError(name, "must be a Firestore collection id (no '/', not starting with __)")
    return value
