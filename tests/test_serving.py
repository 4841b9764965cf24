"""The server in front of the code (`common.serving`), over raw sockets to a real functions-framework process.

What a hostile or broken client can send before any endpoint runs: bytes
that are not HTTP, a head too large or too slow, a body too slow. Each is
answered with a JSON 4xx (or the connection is closed), within its bound,
without holding memory or other requests.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from common.http import BODY_TIMEOUT_SECONDS
from common.serving import HEAD_TIMEOUT_SECONDS, MAX_HEAD_BYTES
from tests.support.served import serving, stack_env

CREATE = b"/api/checkout/embedded-session"


@pytest.fixture(scope="module")
def api(stripe_server, tmp_path_factory):
    env = stack_env(
        stripe_server,
        tmp_path_factory.mktemp("serving") / "payments.db",
        RATE_LIMIT_CREATE="100000000/minute",
        RATE_LIMIT_STATUS="100000000/minute",
    )
    with serving(env) as served:
        yield served


class Answer:
    def __init__(self, raw: bytes):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/1.1 ") else None
        self.headers = {
            k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
        }

    def json(self) -> dict:
        assert self.headers.get("content-type") == "application/json"
        return json.loads(self.body)


def connect(api) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=30)
    return sock


def read_answer(sock: socket.socket) -> tuple[Answer, bool]:
    """The answer on `sock`, read until the server closes; and whether it closed."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
        closed = True
    except TimeoutError:
        closed = False
    except ConnectionResetError:
        closed = True
    return Answer(data), closed


def send_and_read(api, request: bytes) -> Answer:
    with connect(api) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused before reading everything; its answer may still be there
        answer, closed = read_answer(sock)
    assert closed, "the server left a connection it cannot parse open"
    return answer


# -- bytes that are not HTTP -------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST " + CREATE + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"POST " + CREATE + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        b"GET /api/checkout/session-status HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        b"GET /api/checkout/session-status HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["chunk size zz", "chunk without its CRLF", "header line without a colon", "two Content-Lengths"],
)
def test_bytes_that_are_not_http_are_a_json_400_and_the_connection_closes(api, request_bytes):
    answer = send_and_read(api, request_bytes)

    assert answer.status == 400
    assert answer.json()["error"]


@pytest.mark.parametrize("method", [b"TRACE", b"CONNECT"])
def test_a_method_no_endpoint_is_routed_for_is_a_json_405(api, method):
    target = b"127.0.0.1:443" if method == b"CONNECT" else CREATE
    answer = send_and_read(api, method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")

    assert answer.status == 405
    assert answer.json()["error"]
    assert answer.headers["allow"] == "GET, POST, PUT, DELETE, OPTIONS, HEAD, PATCH"


# -- the request head: bounded in size and time ------------------------------------


def test_a_request_line_over_the_limit_is_a_431(api):
    answer = send_and_read(
        api, b"GET /api/checkout/session-status?session_id=" + b"a" * MAX_HEAD_BYTES + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )

    assert answer.status == 431
    assert "larger than" in answer.json()["error"]


def test_headers_over_the_limit_are_a_431_even_when_they_arrive_in_pieces(api):
    with connect(api) as sock:
        sock.sendall(b"GET /api/checkout/session-status HTTP/1.1\r\nHost: x\r\n")
        for _ in range(MAX_HEAD_BYTES // 1024 + 1):
            sock.sendall(b"X-Padding: " + b"p" * 1024 + b"\r\n")
            time.sleep(0.001)
        answer, closed = read_answer(sock)

    assert answer.status == 431
    assert closed


def test_a_head_under_the_limit_is_served(api):
    padding = {f"X-Padding-{i}": "p" * 1000 for i in range((MAX_HEAD_BYTES - 2048) // 1024)}

    response = requests.get(
        api.base_url + "/api/checkout/session-status", params={"session_id": "cs_test_abc"}, headers=padding, timeout=10
    )

    assert response.status_code == 404
    assert response.json() == {"error": "No such checkout session."}


def peak_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_four_ten_megabyte_urls_do_not_grow_the_worker(api):
    requests.get(api.base_url + "/api/checkout/session-status", timeout=10)  # the worker has served one request
    worker = api.worker_pid()
    before = peak_memory_kib(worker)
    url = b"GET /api/checkout/session-status?session_id=" + b"a" * (10 * 1024 * 1024) + b" HTTP/1.1\r\n\r\n"

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: send_and_read(api, url), range(4)))

    grown_kib = peak_memory_kib(worker) - before
    assert grown_kib < 8 * 1024, f"the worker's peak memory grew by {grown_kib} KiB"
    assert {a.status for a in answers} <= {431, None}  # None: reset while the client was still sending


def test_a_head_that_stops_arriving_is_a_408(api):
    with connect(api) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /api/checkout/session-status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer, closed = read_answer(sock)
        waited = time.monotonic() - started

    assert answer.status == 408
    assert answer.json()["error"]
    assert closed
    assert HEAD_TIMEOUT_SECONDS - 0.5 < waited < HEAD_TIMEOUT_SECONDS + 2


def test_a_connection_that_sends_nothing_is_closed(api):
    with connect(api) as sock:
        started = time.monotonic()
        answer, closed = read_answer(sock)
        waited = time.monotonic() - started

    assert closed
    assert answer.status is None
    assert waited < HEAD_TIMEOUT_SECONDS + 2


# -- the request body: bounded in time, per request ----------------------------------


def trickle_body(api, stop: threading.Event) -> tuple[Answer, float]:
    """POST a 100-byte body one byte a second; the answer and how long it took."""
    with connect(api) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST " + CREATE + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        sock.settimeout(1)
        data = b""
        while not stop.is_set() and time.monotonic() - started < 30:
            try:
                if not data:
                    sock.sendall(b" ")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:  # the server closed the connection after its answer
                break
            data += chunk
        return Answer(data), time.monotonic() - started


def test_slow_bodies_are_a_408_and_do_not_hold_up_other_requests(api):
    stop = threading.Event()
    with ThreadPoolExecutor(8) as pool:
        slow = [pool.submit(trickle_body, api, stop) for _ in range(8)]
        time.sleep(1)
        started = time.monotonic()
        served = requests.get(
            api.base_url + "/api/checkout/session-status", params={"session_id": "cs_test_abc"}, timeout=10
        )
        served_in = time.monotonic() - started
        try:
            results = [future.result(timeout=BODY_TIMEOUT_SECONDS + 10) for future in slow]
        finally:
            stop.set()

    assert served.status_code == 404 and served_in < 1
    for answer, took in results:
        assert answer.status == 408
        assert "did not arrive" in answer.json()["error"]
        assert answer.headers["connection"] == "close"
        assert took < BODY_TIMEOUT_SECONDS + 2
