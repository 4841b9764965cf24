"""The transport Stripe calls take: keep-alive connections on the event loop.

`common.stripe_http.PooledAsyncClient` replaces the SDK's own async
transports (see its docstring for why). These tests hold it to what those
give: correct answers under concurrency, the same retryable/not-retryable
split of failures, verified TLS (tests/test_stripe_tls.py); and to what it
adds: connections kept and reused, and a connection the server closed while
idle replaced without an error.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
import threading

import pytest
import stripe

from checkout.create import session_params
from common import stripe_http
from common.stripe_http import PooledAsyncClient
from devtools.stripe_standin import StripeStandin

KEY = "sk_test_" + "connectionsSuiteKey012345"
BODY = session_params("https://herome.example/hero-me?session_id={CHECKOUT_SESSION_ID}")


class CountingClient(PooledAsyncClient):
    """A pool that counts the connections it opens."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.opened = 0

    async def _connect(self, origin):
        self.opened += 1
        return await super()._connect(origin)


def client_for(base_url: str, http_client: PooledAsyncClient, retries: int = 0) -> stripe.StripeClient:
    """A client that gives up at the first failure, so a hidden SDK retry cannot pass a test."""
    return stripe.StripeClient(
        KEY, base_addresses={"api": base_url}, max_network_retries=retries, http_client=http_client
    )


def origin(base_url: str) -> tuple:
    return stripe_http.origin_of(base_url)[0]


async def create(client: stripe.StripeClient) -> dict:
    return (await client.raw_request_async("post", "/v1/checkout/sessions", **BODY)).data


def test_calls_reuse_one_kept_alive_connection(standin):
    pool = CountingClient()
    client = client_for(standin.base_url, pool)

    async def three_calls():
        for _ in range(3):
            await create(client)

    asyncio.run(three_calls())

    assert pool.opened == 1
    assert pool.idle_count(origin(standin.base_url)) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_at_once():
    with StripeStandin() as server:
        pool = CountingClient()
        client = client_for(server.base_url, pool)

        async def across_a_restart():
            await create(client)
            port = int(server.base_url.rsplit(":", 1)[1])
            server.stop()  # closes the kept-alive connection from its side
            server.start(port=port)
            return await create(client)

        session = asyncio.run(across_a_restart())

    assert session["object"] == "checkout.session"
    assert pool.opened == 2


def test_idle_connections_past_the_age_limit_are_closed_not_reused(standin, monkeypatch):
    monkeypatch.setattr(stripe_http, "MAX_IDLE_SECONDS", 0.0)
    pool = CountingClient()
    client = client_for(standin.base_url, pool)

    async def two_calls():
        await create(client)
        await asyncio.sleep(0.01)
        await create(client)

    asyncio.run(two_calls())

    assert pool.opened == 2


def test_concurrent_calls_each_get_their_own_answer(standin):
    pool = CountingClient()
    client = client_for(standin.base_url, pool)

    async def many_at_once():
        ids = [(await create(client))["id"] for _ in range(40)]

        async def retrieve(session_id):
            return (await client.raw_request_async("get", f"/v1/checkout/sessions/{session_id}")).data["id"]

        return ids, await asyncio.gather(*(retrieve(session_id) for session_id in ids * 3))

    ids, answered = asyncio.run(many_at_once())

    assert answered == ids * 3
    assert pool.opened <= 120 and pool.idle_count(origin(standin.base_url)) <= stripe_http.MAX_IDLE_CONNECTIONS


def test_connections_of_a_finished_event_loop_are_not_reused(standin):
    pool = CountingClient()
    client = client_for(standin.base_url, pool)

    asyncio.run(create(client))
    asyncio.run(create(client))

    assert pool.opened == 2


def test_response_headers_are_found_whatever_their_case():
    headers = stripe_http.Headers()
    headers["Request-Id"] = "req_123"

    assert headers["request-id"] == headers.get("REQUEST-ID") == "req_123"
    assert "request-id" in headers and "Request-Id" in headers


def test_a_refused_connection_is_an_error_the_sdk_retries():
    with pytest.raises(stripe.APIConnectionError) as failed:
        asyncio.run(PooledAsyncClient().request_async("get", f"http://127.0.0.1:{unused_port()}/v1/x", {}))
    assert failed.value.should_retry is True


def test_an_answer_that_never_comes_is_a_timeout_the_sdk_retries():
    with SilentServer() as port:
        pool = PooledAsyncClient(timeout=(1.0, 0.2))
        with pytest.raises(stripe.APIConnectionError) as failed:
            asyncio.run(pool.request_async("get", f"http://127.0.0.1:{port}/v1/x", {}))
    assert failed.value.should_retry is True


def test_a_certificate_stripe_does_not_trust_is_an_error_it_does_not_retry(tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    with TlsServer(context) as port, pytest.raises(stripe.APIConnectionError) as failed:
        asyncio.run(PooledAsyncClient().request_async("get", f"https://localhost:{port}/v1/x", {}))
    assert failed.value.should_retry is False
    assert "certificate" in str(failed.value)


# -- helpers ------------------------------------------------------------------


def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SilentServer:
    """Accepts connections and never answers."""

    def __init__(self):
        import socket

        self._socket = socket.create_server(("127.0.0.1", 0))

    def __enter__(self) -> int:
        return self._socket.getsockname()[1]

    def __exit__(self, *exc_info):
        self._socket.close()


class TlsServer:
    """Accepts TLS connections (the handshake is where verification fails) until closed."""

    def __init__(self, context: ssl.SSLContext):
        import socket

        self._socket = socket.create_server(("127.0.0.1", 0))
        self._context = context
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> int:
        self._thread.start()
        return self._socket.getsockname()[1]

    def __exit__(self, *exc_info):
        self._socket.close()

    def _serve(self):
        try:
            while True:
                connection, _ = self._socket.accept()
                try:
                    self._context.wrap_socket(connection, server_side=True).close()
                except (ssl.SSLError, OSError):
                    connection.close()
        except OSError:
            return


def self_signed_certificate(folder) -> tuple[str, str]:
    pytest.importorskip("cryptography")  # a dependency of the Google clients
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = folder / "cert.pem", folder / "key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(certificate_path), str(key_path)
