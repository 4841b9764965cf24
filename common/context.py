"""What one instance builds once and hands to every request: its context.

Settings, the Stripe client, the payment store, the rate limiter, the App
Check verifier and the resolved secrets are built on first use, from one set
of settings, and kept here rather than in module globals. `main.py` makes one context per process
from the environment; a test makes its own from the settings it wants, as
Flask's `create_app(test_config)` does.
"""

from __future__ import annotations

from collections.abc import Mapping

from common import appcheck, logs, ratelimit, secrets
from common import settings as settings_module
from common.settings import Settings
from common.stripe_api import StripeApi
from payments.store import PaymentStore
from payments.stores import open_store


class Context:
    def __init__(self, env: Mapping[str, str] | None = None, *, settings: Settings | None = None):
        """Settings come from `settings`, else from `env`, else from this process's environment."""
        self._env = env
        self._settings = settings
        self._secrets: secrets.Secrets | None = None
        self._stripe: StripeApi | None = None
        self._webhook_secrets: tuple[str, ...] | None = None
        self._store: PaymentStore | None = None
        self._limiter: ratelimit.Limiter | None = None
        self._app_check: appcheck.AppCheck | None = None

    @property
    def settings(self) -> Settings:
        """Parsed on first use. A failed parse is not kept: every request gets the same clear 500."""
        if self._settings is None:
            parsed = settings_module.from_environment() if self._env is None else settings_module.from_env(self._env)
            logs.configure(parsed.google_cloud_project, parsed.service, parsed.revision)
            self._settings = parsed
        return self._settings

    @property
    def secrets(self) -> secrets.Secrets:
        if self._secrets is None:
            self._secrets = secrets.Secrets(self.settings.secret_manager_endpoint)
        return self._secrets

    async def stripe(self) -> StripeApi:
        if self._stripe is None:
            value = await self.secrets.resolve("STRIPE_SECRET_KEY", self.settings.stripe_secret_key)
            key = secrets.stripe_secret_key(value)
            if self._stripe is None:  # another request may have built it while we waited
                self._stripe = StripeApi(key, self.settings.stripe_api_base)
        return self._stripe

    async def webhook_secrets(self) -> tuple[str, ...]:
        if self._webhook_secrets is None:
            value = await self.secrets.resolve("STRIPE_WEBHOOK_SECRET", self.settings.stripe_webhook_secret)
            self._webhook_secrets = secrets.webhook_secrets(value)
        return self._webhook_secrets

    def store(self) -> PaymentStore:
        if self._store is None:
            self._store = open_store(self.settings)
            logs.write("INFO", f"Payment records are stored in {self._store.description}.")
        return self._store

    def limiter(self) -> ratelimit.Limiter:
        if self._limiter is None:
            counts = ratelimit.open_counts(self.settings.rate_limit_storage_uri, self.settings.google_cloud_project)
            self._limiter = ratelimit.Limiter(counts)
            if self._limiter.shared:
                logs.write("INFO", f"Rate limits are counted in {counts.description}.")
        return self._limiter

    def app_check(self) -> appcheck.AppCheck:
        """The App Check verifier; only asked for when APP_CHECK_PROJECT_NUMBER is set."""
        if self._app_check is None:
            settings = self.settings
            assert settings.app_check_project_number, "App Check is off"
            self._app_check = appcheck.AppCheck(settings.app_check_project_number, settings.app_check_jwks_url)
        return self._app_check

    async def close(self) -> None:
        """Close what holds connections (tests and scripts; an instance just exits)."""
        if self._stripe is not None:
            await self._stripe.close()
        if self._store is not None:
            await self._store.close()
        if self._limiter is not None:
            await self._limiter.close()
