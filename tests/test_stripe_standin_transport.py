"""The stand-in's HTTP serving: what pooled clients and benchmarks rely on.

The service and the SDK keep connections to Stripe open between calls, and
the benchmark holds 64 of them with 100 ms of injected latency, so these
tests pin keep-alive, bodies in either framing, concurrency under latency,
and a clean cut of every connection when the stand-in stops.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from devtools.stripe_standin import StripeStandin

KEY = "sk_test_" + "transportSuite0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
FORM = (
    "mode=payment&ui_mode=embedded_page&return_url=http%3A%2F%2F127.0.0.1%2Fdone"
    "&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd"
    "&line_items[0][price_data][unit_amount]=200&line_items[0][price_data][product_data][name]=Board"
)


@pytest.fixture
def standin():
    with StripeStandin() as server:
        yield server


def connect(server: StripeStandin) -> http.client.HTTPConnection:
    host, port = server.base_url[len("http://") :].rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=5)


def get(connection: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
    connection.request("GET", path, headers=AUTH)
    response = connection.getresponse()
    response.read()
    return response


def raw_exchange(server: StripeStandin, request: bytes) -> bytes:
    """Send bytes on a fresh socket and read until the server closes it."""
    host, port = server.base_url[len("http://") :].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_one_connection_serves_many_requests(standin):
    connection = connect(standin)

    answers = [get(connection, "/v1/checkout/sessions") for _ in range(3)]
    sock = connection.sock

    assert [answer.status for answer in answers] == [200, 200, 200]
    assert all(answer.getheader("Connection") is None for answer in answers)
    assert sock is not None and connection.sock is sock


def test_answers_carry_a_content_length_and_json(standin):
    answer = get(connect(standin), "/v1/checkout/sessions")

    assert answer.getheader("Content-Type") == "application/json"
    assert answer.getheader("Transfer-Encoding") is None
    assert int(answer.getheader("Content-Length")) > 0


def test_a_chunked_request_body_is_read_and_the_connection_kept(standin):
    connection = connect(standin)
    halves = (FORM[:40].encode(), FORM[40:].encode())

    connection.request(
        "POST",
        "/v1/checkout/sessions",
        body=iter(halves),
        encode_chunked=True,
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    created = connection.getresponse()
    session = json.loads(created.read())
    after = get(connection, f"/v1/checkout/sessions/{session['id']}")

    assert created.status == 200
    assert session["amount_total"] == 200
    assert after.status == 200


def test_malformed_chunk_framing_is_a_400_and_closes_the_connection(standin):
    request = (
        b"POST /v1/checkout/sessions HTTP/1.1\r\nHost: stand-in\r\nTransfer-Encoding: chunked\r\n"
        b"Authorization: Bearer " + KEY.encode() + b"\r\n\r\nnot-hex\r\nabc\r\n0\r\n\r\n"
    )

    received = raw_exchange(standin, request)

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in head
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert standin.sessions == []


def test_an_http_1_0_client_gets_its_answer_and_a_close(standin):
    received = raw_exchange(standin, b"GET /_standin/events HTTP/1.0\r\n\r\n")

    assert received.startswith(b"HTTP/1.1 200 ")
    assert json.loads(received.partition(b"\r\n\r\n")[2])["object"] == "list"


def test_latency_on_one_connection_does_not_hold_up_the_others(standin):
    standin.latency = 0.3
    connections = [connect(standin) for _ in range(20)]
    for connection in connections:
        connection.connect()
    statuses = []

    def call(connection):
        statuses.append(get(connection, "/v1/checkout/sessions").status)

    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = time.monotonic() - started

    assert statuses == [200] * 20
    assert elapsed < 0.3 * 3  # side by side, not one after another (that would be 6 s)


def test_stop_cuts_idle_kept_alive_connections(standin):
    connection = connect(standin)
    get(connection, "/v1/checkout/sessions")

    standin.stop()

    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        get(connection, "/v1/checkout/sessions")


def test_a_taken_port_raises_oserror_instead_of_exiting(standin):
    port = int(standin.base_url.rsplit(":", 1)[1])

    with pytest.raises(OSError):
        StripeStandin().start(port=port)
