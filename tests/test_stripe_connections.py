"""The transport Stripe calls take: one pool of keep-alive connections for all threads.

`common.stripe_http.PooledHTTPClient` replaces the SDK's RequestsClient (see
its docstring for why). These tests hold it to what RequestsClient gave:
correct answers under concurrency, the same retryable/not-retryable split of
failures, verified TLS; and to what it adds: connections shared between
threads, a closed idle connection replaced without an error, and a
connection opened before the first request (`connections.open_ahead`).
"""

from __future__ import annotations

import datetime
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from common import connections
from common.stripe_http import PooledHTTPClient
from devtools.stripe_standin import StripeStandin

KEY = "sk_test_" + "connectionsSuiteKey012345"
BODY = {
    "mode": "payment",
    "ui_mode": "embedded_page",
    "return_url": "https://herome.example/hero-me?session_id={CHECKOUT_SESSION_ID}",
    "line_items": [{"price_data": {"currency": "usd", "product_data": {"name": "Board"}, "unit_amount": 200},
                    "quantity": 1}],
}


class CountingPool(connections.ConnectionPool):
    """A pool that counts the connections it opens."""

    def __init__(self, size: int = 8):
        super().__init__(connections.TIMEOUT_SECONDS, size)
        self.opened = 0

    def connect(self, origin):
        self.opened += 1
        return super().connect(origin)


def client_for(base_url: str, pool: connections.ConnectionPool, retries: int = 0) -> stripe.StripeClient:
    """A client that gives up at the first failure, so a hidden SDK retry cannot pass a test."""
    return stripe.StripeClient(KEY, base_addresses={"api": base_url}, max_network_retries=retries,
                               http_client=PooledHTTPClient(pool))


def origin(base_url: str) -> tuple:
    return connections.origin_of(base_url)[0]


def test_calls_reuse_one_kept_alive_connection(standin):
    pool = CountingPool()
    client = client_for(standin.base_url, pool)

    for _ in range(3):
        client.raw_request("post", "/v1/checkout/sessions", **BODY)

    assert pool.opened == 1
    assert pool.idle_count(origin(standin.base_url)) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_at_once():
    with StripeStandin() as server:
        pool = CountingPool()
        client = client_for(server.base_url, pool)
        client.raw_request("post", "/v1/checkout/sessions", **BODY)
        port = int(server.base_url.rsplit(":", 1)[1])
        server.stop()  # closes the kept-alive connection from its side
        server.start(port=port)

        session = client.raw_request("post", "/v1/checkout/sessions", **BODY).data

    assert session["object"] == "checkout.session"
    assert pool.opened == 2


def test_idle_connections_past_the_age_limit_are_closed_not_reused(standin, monkeypatch):
    monkeypatch.setattr(connections, "MAX_IDLE_SECONDS", 0.0)
    pool = CountingPool()
    client = client_for(standin.base_url, pool)

    client.raw_request("post", "/v1/checkout/sessions", **BODY)
    client.raw_request("post", "/v1/checkout/sessions", **BODY)

    assert pool.opened == 2


def test_concurrent_calls_each_get_their_own_answer(standin):
    setup = client_for(standin.base_url, CountingPool())
    ids = [setup.raw_request("post", "/v1/checkout/sessions", **BODY).data["id"] for _ in range(40)]
    pool = CountingPool(size=4)
    client = client_for(standin.base_url, pool)

    def retrieve(session_id):
        return client.raw_request("get", f"/v1/checkout/sessions/{session_id}").data["id"]

    with ThreadPoolExecutor(max_workers=16) as threads:
        answered = list(threads.map(retrieve, ids * 3))

    assert answered == ids * 3
    assert pool.idle_count(origin(standin.base_url)) <= 4


def test_a_refused_connection_is_an_error_the_sdk_retries():
    pool = connections.ConnectionPool(connections.TIMEOUT_SECONDS, 4)
    with pytest.raises(stripe.APIConnectionError) as failed:
        PooledHTTPClient(pool).request("get", f"http://127.0.0.1:{unused_port()}/v1/checkout/sessions/x", {})
    assert failed.value.should_retry is True


def test_a_certificate_stripe_does_not_trust_is_an_error_it_does_not_retry(tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    with TlsServer(context) as port:
        pool = connections.ConnectionPool(connections.TIMEOUT_SECONDS, 4)
        with pytest.raises(stripe.APIConnectionError) as failed:
            PooledHTTPClient(pool).request("get", f"https://localhost:{port}/v1/checkout/sessions/x", {})
    assert failed.value.should_retry is False
    assert "certificate" in str(failed.value)


def test_open_ahead_connects_without_sending_anything(standin, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", KEY)
    monkeypatch.setenv("STRIPE_API_BASE", standin.base_url)
    monkeypatch.setattr(connections, "_shared", None)
    before = standin.request_count

    connections.open_ahead().join(timeout=10)

    assert connections.shared().idle_count(origin(standin.base_url)) == 1
    assert standin.request_count == before


def test_open_ahead_does_nothing_without_a_stripe_key(monkeypatch):
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    assert connections.open_ahead() is None


# -- helpers ------------------------------------------------------------------

def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = folder / "cert.pem", folder / "key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(certificate_path), str(key_path)
