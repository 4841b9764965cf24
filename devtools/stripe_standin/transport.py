"""HTTP plumbing: the threaded server and request handler in front of StripeStandin.

Stripe's behaviour lives in ``server``; this module only moves bytes. It is
kept separate because its concerns are the socket's, not Stripe's: HTTP/1.1
keep-alive for the SDK's pooled connections, chunked request bodies, a
listen backlog large enough for benchmarks, replies written in one go, and
cutting idle connections when the stand-in stops.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Dict, NamedTuple, Tuple

from devtools.stripe_standin.errors import StripeError

if TYPE_CHECKING:
    from devtools.stripe_standin.server import StripeStandin


class _Reply(NamedTuple):
    status: int
    body: bytes
    headers: Dict[str, str]


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")


def _admin_error(status: int, message: str) -> _Reply:
    error = StripeError(status, message, code="resource_missing" if status == 404 else None)
    return _Reply(status, _json_bytes(error.to_dict()), {})


class _StandinServer(ThreadingHTTPServer):
    """Thread-per-connection server that can cut idle keep-alive connections on stop."""

    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open dozens of connections at once; the default backlog of 5 drops SYNs.
    request_queue_size = 256

    def __init__(self, address: Tuple[str, int], standin: StripeStandin):
        self.standin = standin
        self._connections: set = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-request is routine (timeouts, benchmarks ending)."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StripeStandin/1.0"
    sys_version = ""
    # Replies go out in one write, and small writes must not wait for ACKs.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the request log on the stand-in is the record."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._write(_admin_error(400, "Malformed request body framing."))
            return
        try:
            reply = self.server.standin.handle_http(self.command, self.path, self.headers, body)
        except Exception as error:  # a bug here must not kill the connection silently
            reply = _Reply(
                500,
                _json_bytes(StripeError(500, f"Stand-in failure: {error!r}", type="api_error").to_dict()),
                {"Stripe-Should-Retry": "false"},
            )
        self._write(reply)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, reply: _Reply) -> None:
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {reply.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
            "Content-Type: application/json",
            f"Content-Length: {len(reply.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + reply.body)
