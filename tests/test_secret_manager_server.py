"""The local Secret Manager server works with the real google-cloud-secret-manager client.

The app reads each secret as Google's samples do: access the version, then
compare ``payload.data_crc32c`` with its own CRC32C of ``payload.data``.
These tests do exactly that against the test server.
"""

import google.auth
import google_crc32c
import grpc
import pytest
from google.api_core import exceptions
from google.cloud import secretmanager
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from tests.support.secret_manager import crc32c

NAME = "projects/test-project/secrets/stripe-api-key/versions/3"


@pytest.fixture
def client(secret_manager_server, monkeypatch):
    """A real client over a plain channel: no TLS and no credential lookup."""

    def no_default_credentials(*args, **kwargs):
        raise AssertionError("the local client must not look for Google credentials")

    monkeypatch.setattr(google.auth, "default", no_default_credentials)
    channel = grpc.insecure_channel(secret_manager_server.address)
    client = secretmanager.SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))
    with client:
        yield client


def read_secret(client, name):
    """What the app does: access the version and verify its checksum."""
    response = client.access_secret_version(request={"name": name}, timeout=5)
    if response.payload.data_crc32c != google_crc32c.value(response.payload.data):
        raise ValueError(f"checksum mismatch for {name}")
    return response.payload.data


def test_checksum_matches_published_crc32c_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    for data in (b"sk_test_123", bytes(range(256)) * 5):
        assert crc32c(data) == google_crc32c.value(data)  # what the app computes


def test_real_client_reads_a_secret(secret_manager_server, client):
    secret_manager_server.secrets[NAME] = b"sk_test_123"

    response = client.access_secret_version(request={"name": NAME}, timeout=5)

    assert response.name == NAME
    assert response.payload.data == b"sk_test_123"
    assert "data_crc32c" in response.payload
    assert read_secret(client, NAME) == b"sk_test_123"
    assert secret_manager_server.calls[NAME] == 2


def test_corrupted_checksum_is_detected(secret_manager_server, client):
    secret_manager_server.secrets[NAME] = b"sk_test_123"
    secret_manager_server.corrupt(NAME)

    with pytest.raises(ValueError, match="checksum mismatch"):
        read_secret(client, NAME)


def test_unknown_version_is_not_found(secret_manager_server, client):
    missing = "projects/test-project/secrets/nope/versions/1"

    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(request={"name": missing}, timeout=5)

    assert secret_manager_server.calls[missing] == 1


def test_default_transport_cannot_reach_the_plain_server(secret_manager_server):
    """Why the snippet above builds its own channel: ``api_endpoint`` alone means TLS."""
    from google.auth.credentials import AnonymousCredentials

    secret_manager_server.secrets[NAME] = b"x"
    client = secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": secret_manager_server.address},
    )
    with client, pytest.raises(exceptions.ServiceUnavailable):
        client.access_secret_version(request={"name": NAME}, retry=None, timeout=2)
    assert secret_manager_server.calls[NAME] == 0
