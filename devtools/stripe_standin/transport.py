"""HTTP plumbing: Werkzeug's threaded server and a small WSGI app in front of StripeStandin.

Stripe's behaviour lives in ``server``; this module only moves bytes.
Werkzeug parses requests (chunked bodies included) and builds responses;
what is added here is what a stand-in under load needs from its socket:

- Keep-alive. Werkzeug's own handler answers every request with
  ``Connection: close`` and then drains the socket, because it cannot know
  whether an application read the whole body. The SDK and the service keep
  pooled connections to Stripe, and a benchmark at 64 connections must not
  measure reconnects, so the handler here keeps the connection open
  whenever the app read the request body in full (it always tries to).
- One thread per connection, so injected latency (a sleep) never holds up
  another request.
- A listen backlog large enough for dozens of connections opening at once,
  and a bind failure raised as ``OSError`` (Werkzeug would exit the process).
- Cutting idle kept-alive connections when the stand-in stops, so a client
  sees the server go away as it would with Stripe.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from werkzeug.exceptions import HTTPException
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from devtools.stripe_standin.errors import StripeError

if TYPE_CHECKING:
    from devtools.stripe_standin.server import StripeStandin

# Benchmarks open dozens of connections at once; a short backlog drops SYNs.
_BACKLOG = 256
# Set in the WSGI environ once the request body has been read to its end,
# which is what makes it safe to read the next request from the connection.
_BODY_READ = "stripe_standin.body_read"


class _Reply(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")


def _admin_error(status: int, message: str) -> _Reply:
    error = StripeError(status, message, code="resource_missing" if status == 404 else None)
    return _Reply(status, _json_bytes(error.to_dict()), {})


def make_app(standin: StripeStandin) -> Callable:
    """The WSGI app: one request in, ``standin.handle_http`` answers it."""

    @Request.application
    def app(request: Request) -> Response:
        try:
            body = request.get_data(cache=False)
        except (OSError, HTTPException):  # broken chunk framing, a body cut short
            return _response(_admin_error(400, "Malformed request body framing."))
        request.environ[_BODY_READ] = True
        try:
            reply = standin.handle_http(
                request.method,
                request.path,
                request.query_string.decode("latin-1"),
                request.headers,
                body,
            )
        except Exception as error:  # noqa: BLE001 - a bug here must not kill the connection silently
            failure = StripeError(500, f"Stand-in failure: {error!r}", type="api_error")
            reply = _Reply(500, _json_bytes(failure.to_dict()), {"Stripe-Should-Retry": "false"})
        return _response(reply)

    return app


def _response(reply: _Reply) -> Response:
    return Response(reply.body, status=reply.status, headers=reply.headers, content_type="application/json")


class _Handler(WSGIRequestHandler):
    """Werkzeug's request handler, keeping HTTP/1.1 connections alive between requests."""

    protocol_version = "HTTP/1.1"
    server_version = "StripeStandin/1.0"
    sys_version = ""
    # A reply goes out in one write: buffered here, flushed after each request.
    wbufsize = -1
    disable_nagle_algorithm = True

    server: _StandinServer  # the server this handler serves for

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Stay quiet: the request log on the stand-in is the record."""

    def log(self, type: str, message: str, *args: Any) -> None:
        """Errors too: a client hanging up is routine in benchmarks."""

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        environ = self.make_environ()
        status, headers, body = _call(self.server.app, environ)
        self.send_response(int(status.split(" ", 1)[0]))
        for name, value in headers:
            self.send_header(name, value)
        if not environ.get(_BODY_READ):
            # Unread body bytes would be taken for the next request.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _call(app: Callable, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to completion: its status, headers and whole body."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        started[:] = [status, headers]
        return written.append

    chunks: Iterable[bytes] = app(environ, start_response)
    try:
        written.extend(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return started[0], started[1], b"".join(written)


class _StandinServer(ThreadedWSGIServer):
    """Werkzeug's thread-per-connection server, able to cut idle connections on stop."""

    def __init__(self, host: str, port: int, app: Callable):
        self._connections: set = set()
        self._connections_lock = threading.Lock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Bound here so a taken port raises OSError; Werkzeug would print and exit.
        listener = socket.create_server((host, port), family=family, backlog=_BACKLOG)
        try:
            super().__init__(host, port, app, _Handler, fd=listener.fileno())
        finally:
            listener.close()  # Werkzeug serves from its own duplicate of the socket

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
