"""A local Secret Manager for the tests, spoken to by the real client over gRPC.

Only ``AccessSecretVersion`` is served: it is the one call the app makes. The
server answers like the real service: NOT_FOUND for unknown version names,
and a payload carrying ``data_crc32c`` so the app's integrity check runs for
real. ``corrupt(name)`` makes that checksum wrong on purpose, ``fail(code)``
answers calls with an error status, and ``stall()`` makes it take every call
and never answer, like a service that hangs; ``abandoned`` then says how long
each stalled call was held before its client gave up on it. It listens at
``address`` on 127.0.0.1, and on the same port of [::1].

Point a real client at it without credentials or TLS::

    channel = grpc.insecure_channel(server.address)
    client = secretmanager.SecretManagerServiceClient(
        transport=SecretManagerServiceGrpcTransport(channel=channel)
    )

Use from a conftest.py or a test module::

    from tests.support.secret_manager import secret_manager_server
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from concurrent import futures

import grpc
import pytest
from google.cloud.secretmanager_v1 import types

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), computed independently of the app's own library.

    An independent implementation keeps the test server an honest reference
    for the checksum the app verifies.
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class SecretManagerServer:
    """An in-process gRPC server holding ``{version name: payload bytes}``."""

    def __init__(self, secrets: dict[str, bytes] | None = None):
        self.secrets: dict[str, bytes] = dict(secrets or {})
        self.calls: Counter[str] = Counter()
        self.call_times: defaultdict[str, list[float]] = defaultdict(list)  # monotonic time of each call
        self.abandoned: list[float] = []  # seconds each stalled call was held before its client gave up
        self._corrupted: set[str] = set()
        self._failures: list[grpc.StatusCode] = []
        self._failing: grpc.StatusCode | None = None
        self._stalled = False
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(
            self._access_secret_version,
            request_deserializer=types.AccessSecretVersionRequest.deserialize,
            response_serializer=types.AccessSecretVersionResponse.serialize,
        )
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, {"AccessSecretVersion": handler})]
        )
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        try:  # where there is no IPv6 loopback, only the test of an [::1] endpoint fails
            self._server.add_insecure_port(f"[::1]:{port}")
        except RuntimeError:
            pass

    def corrupt(self, name: str) -> None:
        """Serve ``name`` with a wrong checksum, as if the payload was damaged."""
        self._corrupted.add(name)

    def fail(self, code: grpc.StatusCode, times: int | None = None) -> None:
        """Answer the next `times` calls (or every call) with the status `code`."""
        if times is None:
            self._failing = code
        else:
            self._failures.extend([code] * times)

    def stall(self) -> None:
        """Hold every call without answering until the server stops."""
        self._stalled = True

    def start(self) -> SecretManagerServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.stop(grace=None)

    def _access_secret_version(self, request, context):
        name = request.name
        with self._lock:
            self.calls[name] += 1
            self.call_times[name].append(time.monotonic())
            failure = self._failures.pop(0) if self._failures else self._failing
        if failure is not None:
            context.abort(failure, f"Failing on purpose with {failure.name}.")
        if self._stalled:
            started = time.monotonic()
            while context.is_active() and not self._released.wait(0.02):
                pass
            if not self._released.is_set():
                with self._lock:
                    self.abandoned.append(time.monotonic() - started)
            context.abort(grpc.StatusCode.UNAVAILABLE, "The server is stopping.")
        if name not in self.secrets:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        data = self.secrets[name]
        checksum = crc32c(data)
        if name in self._corrupted:
            checksum ^= 0xFFFFFFFF
        return types.AccessSecretVersionResponse(
            name=name,
            payload=types.SecretPayload(data=data, data_crc32c=checksum),
        )


@pytest.fixture
def secret_manager_server():
    """A fresh, empty server per test; fill ``.secrets`` before the code under test runs."""
    server = SecretManagerServer().start()
    try:
        yield server
    finally:
        server.stop()
