"""Secret settings: a plain value, or a Secret Manager version to read once.

`--set-secrets` hands a function the secret's value, which is used as it is.
A value shaped like `projects/P/secrets/S/versions/V` is instead read through
Secret Manager on first use and kept for the life of the instance. The client
library costs ~0.4 s to import, so it is imported only on that path.
"""

from __future__ import annotations

import re
import threading

from common.errors import SettingError

VERSION_NAME = re.compile(r"^projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+$")
FETCH_TIMEOUT_SECONDS = 10

_values: dict[str, str] = {}
_client = None
_lock = threading.Lock()


def resolve(setting: str, value: str, endpoint: str | None = None) -> str:
    """Return the secret behind `value`, reading Secret Manager if it names a version."""
    if not VERSION_NAME.match(value):
        return value
    with _lock:
        if value not in _values:
            _values[value] = _access(setting, value, endpoint)
        return _values[value]


def _access(setting: str, name: str, endpoint: str | None) -> str:
    from google.api_core import exceptions
    import google_crc32c

    try:
        response = _get_client(endpoint).access_secret_version(
            request={"name": name}, timeout=FETCH_TIMEOUT_SECONDS
        )
    except exceptions.GoogleAPICallError as error:
        raise SettingError(setting, f"could not be read from Secret Manager ({error.__class__.__name__})")

    # The checksum guards against a payload corrupted in transit, as Google's samples do.
    data = response.payload.data
    if response.payload.data_crc32c != google_crc32c.value(data):
        raise SettingError(setting, "failed its CRC32C check when read from Secret Manager")
    return data.decode("utf-8").strip()


def _get_client(endpoint: str | None):
    global _client
    if _client is None:
        from google.cloud import secretmanager

        if endpoint and endpoint.split(":")[0] in ("localhost", "127.0.0.1", "[::1]"):
            # A local server speaks plain gRPC and wants no Google credentials.
            import grpc
            from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
                SecretManagerServiceGrpcTransport,
            )

            transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
            _client = secretmanager.SecretManagerServiceClient(transport=transport)
        elif endpoint:
            _client = secretmanager.SecretManagerServiceClient(client_options={"api_endpoint": endpoint})
        else:
            _client = secretmanager.SecretManagerServiceClient()
    return _client


def clear_cache() -> None:
    """Forget read secrets and the client (tests, and a key rolled in place)."""
    global _client
    with _lock:
        _values.clear()
        _client = None
