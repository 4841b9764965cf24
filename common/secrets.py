"""Secret settings: a plain value, or a Secret Manager version read once per instance.

`--set-secrets` hands the service the secret's value, which is used as it
is. A value shaped like `projects/P/secrets/S/versions/V` is instead read
through Secret Manager on first use and kept for the life of the instance.

Reading must never stall the service: every read is bounded by
FETCH_TIMEOUT_SECONDS, concurrent requests wait for the one read already
under way instead of starting their own (and never wait longer than the
bound), and a failed read is remembered for RETRY_AFTER_SECONDS so a burst
of requests during an outage does not re-dial Secret Manager each time.
The client library costs ~0.4 s to import, so it is imported only here, on
first use.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any
from urllib.parse import urlsplit

from common.errors import SettingError

VERSION_NAME = re.compile(r"projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+")
FETCH_TIMEOUT_SECONDS = 8.0
RETRY_AFTER_SECONDS = 5.0


class Secrets:
    """Resolves secret settings for one instance; shared by all its requests."""

    def __init__(self, endpoint: str | None = None):
        self.endpoint = endpoint
        self._values: dict[str, str] = {}
        self._reads: dict[str, asyncio.Future] = {}
        self._failures: dict[str, tuple[float, SettingError]] = {}
        self._client: Any = None  # the Secret Manager client, imported on first use

    async def resolve(self, setting: str, value: str) -> str:
        """The secret behind `value`: itself, or the Secret Manager version it names."""
        if not VERSION_NAME.fullmatch(value):
            return value
        if value in self._values:
            return self._values[value]
        failed = self._failures.get(value)
        if failed and time.monotonic() < failed[0]:
            # A new exception each time: raising the remembered one again would pile every request's traceback on it.
            raise SettingError(failed[1].name, failed[1].problem)
        read = self._reads.get(value)
        if read is None:
            read = self._reads[value] = asyncio.ensure_future(self._read(setting, value))
        try:
            # shield: a waiter that gives up (its request was cancelled) leaves the read to the others.
            return await asyncio.wait_for(asyncio.shield(read), FETCH_TIMEOUT_SECONDS + 1)
        except TimeoutError:
            raise SettingError(setting, "could not be read from Secret Manager in time") from None

    async def _read(self, setting: str, name: str) -> str:
        try:
            value = await asyncio.wait_for(asyncio.to_thread(self._access, setting, name), FETCH_TIMEOUT_SECONDS)
        except TimeoutError:
            error = SettingError(setting, "could not be read from Secret Manager in time")
        except SettingError as refused:
            error = refused
        else:
            self._values[name] = value
            return value
        finally:
            self._reads.pop(name, None)
        self._failures[name] = (time.monotonic() + RETRY_AFTER_SECONDS, error)
        raise error

    def _access(self, setting: str, name: str) -> str:
        """One bounded read, on a worker thread: the client is synchronous."""
        import google_crc32c
        from google.api_core import retry

        try:
            response = self._get_client().access_secret_version(
                request={"name": name},
                timeout=FETCH_TIMEOUT_SECONDS,
                retry=retry.Retry(predicate=retry.if_transient_error, timeout=FETCH_TIMEOUT_SECONDS),
            )
        except Exception as error:  # noqa: BLE001 - RPC errors, the retry deadline, missing credentials
            # The class names the cause for the operator; the message may quote request data, so it is dropped.
            raise SettingError(setting, f"could not be read from Secret Manager ({error.__class__.__name__})") from None

        # The checksum guards against a payload corrupted in transit, as Google's samples do.
        data = response.payload.data
        if response.payload.data_crc32c != google_crc32c.value(data):
            raise SettingError(setting, "failed its CRC32C check when read from Secret Manager")
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise SettingError(setting, "is not UTF-8 text in Secret Manager") from None

    def _get_client(self):
        if self._client is None:
            from google.cloud import secretmanager

            endpoint = self.endpoint
            if not endpoint:
                self._client = secretmanager.SecretManagerServiceClient()
            elif urlsplit(f"//{endpoint}").hostname in ("localhost", "127.0.0.1", "::1"):  # "[::1]:8443" is ::1
                # A local server speaks plain gRPC and wants no Google credentials.
                import grpc
                from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
                    SecretManagerServiceGrpcTransport,
                )

                transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
                self._client = secretmanager.SecretManagerServiceClient(transport=transport)
            else:
                self._client = secretmanager.SecretManagerServiceClient(client_options={"api_endpoint": endpoint})
        return self._client


def stripe_secret_key(value: str) -> str:
    """A Stripe secret or restricted key, or SettingError (quoting nothing of it)."""
    if not value:
        raise SettingError("STRIPE_SECRET_KEY", "is not set")
    if not value.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise SettingError("STRIPE_SECRET_KEY", "is not a Stripe secret key (sk_… or rk_…)")
    return value


def webhook_secrets(value: str) -> tuple[str, ...]:
    """All accepted endpoint secrets: more than one while a secret is rolled."""
    if not value:
        raise SettingError("STRIPE_WEBHOOK_SECRET", "is not set")
    values = tuple(s.strip() for s in value.split(",") if s.strip())
    if not values or not all(v.startswith("whsec_") for v in values):
        raise SettingError("STRIPE_WEBHOOK_SECRET", "must be one or more comma-separated whsec_… signing secrets")
    return values
