"""Stripe calls over verified TLS, as they go to api.stripe.com in production.

The stand-in speaks plain HTTP, so these tests put a TLS server with a
certificate of their own in front of it: a certificate the pool trusts and
that names the host is accepted end to end through the real SDK; one that
names another host is refused, and not retried.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading

import pytest
import stripe

from common.stripe_http import PooledAsyncClient
from tests.test_stripe_http import BODY, KEY, self_signed_certificate


class TlsRelay:
    """Terminates TLS with `context` and relays bytes both ways to a plain HTTP server."""

    def __init__(self, context: ssl.SSLContext, upstream: tuple[str, int]):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._context = context
        self._upstream = upstream
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self._listener.close()

    def _accept(self):
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            secure = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        plain = socket.create_connection(self._upstream)
        threading.Thread(target=_pipe, args=(plain, secure), daemon=True).start()
        _pipe(secure, plain)


def _pipe(source, target):
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.close()
            except OSError:
                pass


@pytest.fixture
def tls_standin(standin, tmp_path):
    """The stand-in behind TLS; yields (port, CA file that trusts its certificate for 'localhost')."""
    certificate, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    host, port = standin.base_url.removeprefix("http://").split(":")
    relay = TlsRelay(context, (host, int(port)))
    yield relay.port, certificate
    relay.close()


def test_a_session_is_created_over_verified_tls(tls_standin, standin):
    port, ca_file = tls_standin
    pool = PooledAsyncClient(ca_file=ca_file)
    client = stripe.StripeClient(
        KEY, base_addresses={"api": f"https://localhost:{port}"}, max_network_retries=0, http_client=pool
    )

    async def create_then_retrieve():
        created = await client.v1.checkout.sessions.create_async(params=BODY)
        return created, await client.v1.checkout.sessions.retrieve_async(created.id)

    first, second = asyncio.run(create_then_retrieve())

    assert second.id == first.id
    assert pool.idle_count(("https", "localhost", port)) == 1  # the TLS connection was kept alive and reused


def test_a_certificate_for_another_host_is_refused_and_not_retried(tls_standin):
    port, ca_file = tls_standin
    pool = PooledAsyncClient(ca_file=ca_file)

    with pytest.raises(stripe.APIConnectionError) as refused:
        asyncio.run(pool.request_async("get", f"https://127.0.0.1:{port}/v1/checkout/sessions/x", {}))

    assert refused.value.should_retry is False
