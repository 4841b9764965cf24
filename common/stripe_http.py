"""How the Stripe SDK reaches Stripe: keep-alive connections on the event loop.

The SDK's own async transports (HTTPX, aiohttp) cost more than this service
can spend: through `stripe.HTTPXClient` a create request cost ~1.4 ms of CPU
against ~0.55 ms through this pool (bench/README.md), and httpx adds ~65 ms
to every cold start. So the transport is a small asyncio protocol with
httptools' C parser (which uvicorn uses too): each request takes an idle
connection or opens one, sends, reads the whole answer and gives the
connection back for the next request. TLS is verified against the CA bundle
the Stripe SDK ships, with hostname checking, as the SDK's transports do.
No proxy support: Cloud Run reaches Stripe directly.

Failures become `stripe.APIConnectionError`, retryable exactly when the
SDK's RequestsClient would retry them: timeouts and failed or dropped
connections yes, certificate failures no; the SDK then retries with
backoff. One case is not a failure: a kept-alive connection the server
closed while it sat idle, noticed before any answer arrived. The request is
sent again at once on a new connection, which is safe because the SDK's
POSTs carry idempotency keys.
"""

from __future__ import annotations

import asyncio
import ssl
import textwrap
import time
from urllib.parse import urlsplit

import httptools
import stripe

# (connect, whole answer) seconds: with the SDK's two retries, three
# attempts stay well inside the request timeout.
TIMEOUT_SECONDS = (3.05, 10.0)

# Idle connections older than this are closed instead of reused: NAT
# gateways (Cloud NAT's default is 30 s for established TCP) and servers drop
# idle connections silently, and a request sent on one would wait for the
# read timeout before failing.
MAX_IDLE_SECONDS = 25.0
MAX_IDLE_CONNECTIONS = 64


class Headers(dict):
    """Response headers, looked up whatever their case (the SDK asks for both Request-Id and request-id)."""

    def __setitem__(self, name, value):
        super().__setitem__(name.lower(), value)

    def __getitem__(self, name):
        return super().__getitem__(name.lower())

    def __contains__(self, name):
        return super().__contains__(name.lower())

    def get(self, name, default=None):
        return super().get(name.lower(), default)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: a request goes out, httptools parses the answer as it arrives."""

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._answer: asyncio.Future | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers = Headers()
        self._body: list[bytes] = []
        self._received = False

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def connection_lost(self, exc):
        self.closed = True
        self._fail(exc or ConnectionResetError("connection closed before the answer was complete"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes):
        self._headers[name.decode("latin-1")] = value.decode("latin-1")

    def on_body(self, body: bytes):
        self._body.append(body)

    def on_message_complete(self):
        if self._answer is not None and not self._answer.done():
            status = self._parser.get_status_code()
            keep = self._parser.should_keep_alive()
            self._answer.set_result((b"".join(self._body), status, self._headers, keep))

    def send(self, request: bytes) -> asyncio.Future:
        self._answer = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._received = Headers(), [], False
        assert self.transport is not None, "sent before the connection was made"
        self.transport.write(request)
        return self._answer

    @property
    def answered_nothing(self) -> bool:
        return not self._received

    def close(self):
        if self.transport is not None:
            self.transport.close()
        self.closed = True

    def _fail(self, error: BaseException):
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()


class PooledAsyncClient(stripe.HTTPClient):
    """A `stripe.HTTPClient` for `StripeClient`'s async calls, with keep-alive connections."""

    name = "asyncio+httptools"

    def __init__(self, timeout: tuple[float, float] = TIMEOUT_SECONDS, ca_file: str | None = None):
        super().__init__()
        self.connect_timeout, self.read_timeout = timeout
        self._ca_file = ca_file
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[tuple, list[_Connection]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def request_async(self, method, url, headers, post_data=None):
        try:
            return await self._request(method.upper(), url, headers or {}, post_data)
        except Exception as error:
            raise connection_error(error) from error

    async def request_stream_async(self, method, url, headers, post_data=None):
        content, status, response_headers = await self.request_async(method, url, headers, post_data)

        async def chunks():
            yield content

        return chunks(), status, response_headers

    def sleep_async(self, secs: float):
        return asyncio.sleep(secs)

    async def close_async(self):
        self.close()

    def close(self):
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def idle_count(self, origin: tuple) -> int:
        return len(self._idle.get(origin, ()))

    async def _request(self, method: str, url: str, headers, body) -> tuple[bytes, int, Headers]:
        origin, target = origin_of(url)
        if isinstance(body, str):
            body = body.encode("utf-8")
        request = _encode(method, target, origin, headers, body or b"")
        connection, reused = self._take(origin)
        if connection is None:
            connection = await self._connect(origin)
        try:
            async with asyncio.timeout(self.read_timeout):
                try:
                    content, status, response_headers, keep = await connection.send(request)
                except (ConnectionError, OSError):
                    if not (reused and connection.answered_nothing):
                        raise
                    connection = await self._connect(origin)  # the server closed it while it was idle
                    content, status, response_headers, keep = await connection.send(request)
        except BaseException:
            connection.close()
            raise
        if keep and not connection.closed:
            self._give_back(origin, connection)
        else:
            connection.close()
        return content, status, response_headers

    def _take(self, origin: tuple) -> tuple[_Connection | None, bool]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            self._idle, self._loop = {}, loop
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the likeliest to be alive
            if not connection.closed and now - connection.idle_since <= MAX_IDLE_SECONDS:
                return connection, True
            connection.close()
        return None, False

    def _give_back(self, origin: tuple, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= MAX_IDLE_CONNECTIONS:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, origin: tuple) -> _Connection:
        scheme, host, port = origin
        tls = self._tls_context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, connection = await loop.create_connection(
                _Connection, host, port, ssl=tls, server_hostname=host if tls else None
            )
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        # Built once: loading the CA bundle costs a few ms of CPU per context.
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=self._ca_file or stripe.ca_bundle_path)
        return self._tls


def origin_of(url: str) -> tuple[tuple, str]:
    """((scheme, host, port), path and query) of an absolute URL."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), target


def _encode(method: str, target: str, origin: tuple, headers, body: bytes) -> bytes:
    scheme, host, port = origin
    default_port = 443 if scheme == "https" else 80
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}" if port == default_port else f"Host: {host}:{port}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def connection_error(error: BaseException) -> stripe.APIConnectionError:
    """The SDK's error for a call that got no answer, retryable when RequestsClient would retry it."""
    if isinstance(error, ssl.SSLCertVerificationError):
        message, retry = "Could not verify Stripe's SSL certificate.", False
    elif isinstance(error, ssl.SSLError) and not isinstance(error, ssl.SSLEOFError):
        message, retry = "Could not set up a secure connection to Stripe.", False
    elif isinstance(error, (OSError, TimeoutError, httptools.HttpParserError)):  # timeouts, refused, reset, garbage
        message, retry = "Unexpected error communicating with Stripe.", True
    else:
        message, retry = "Unexpected error communicating with Stripe.", False
    detail = textwrap.shorten(f"{type(error).__name__}: {error}", 300)
    return stripe.APIConnectionError(f"{message}\n\n(Network error: {detail})", should_retry=retry)
