"""How the Stripe SDK reaches Stripe: the process's shared keep-alive connections.

The SDK's default transport, RequestsClient, keeps a `requests.Session` per
thread and, on every call, scans the environment for proxy settings and
looks for a .netrc file; urllib3 under it adds a liveness poll and its own
bookkeeping. Against the local stand-in a create call cost ~2.0 ms of CPU
through RequestsClient and ~0.9 ms through urllib3 alone; answered as plain
JSON (see `common.stripe_api`), ~0.6 ms through urllib3 and ~0.4 ms through
this client. With 64 requests in flight on one instance, CPU per request is
what decides how many it serves, so the transport is a small pool of
standard-library `http.client` connections (`common.connections`), shared
by all threads: a thread that has not called Stripe yet reuses a
connection instead of opening its own, and a connection opened before the
first request can serve it.

Failures become `stripe.APIConnectionError`, retryable exactly when
RequestsClient would retry them: timeouts and failed or dropped connections
yes, certificate failures no; the SDK then retries with backoff. One case is
not a failure: a kept-alive connection the server closed while it sat idle.
The request is sent again at once on a new connection, as urllib3 would
after its liveness check; that is safe because it never reached the server,
and the SDK's POSTs carry idempotency keys anyway.
"""

from __future__ import annotations

import http.client
import io
import ssl
import textwrap

import stripe
from requests.structures import CaseInsensitiveDict

from common import connections

# What a write or a read on a reused connection raises when the server closed it while idle.
_CLOSED_WHILE_IDLE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError)


class PooledHTTPClient(stripe.HTTPClient):
    name = "http.client"

    def __init__(self, pool: connections.ConnectionPool | None = None):
        super().__init__()
        self.pool = pool or connections.shared()

    def request(self, method, url, headers, post_data=None):
        try:
            return self._request(method.upper(), url, headers or {}, post_data)
        except Exception as error:
            raise connection_error(error) from error

    def request_stream(self, method, url, headers, post_data=None):
        content, status, response_headers = self.request(method, url, headers, post_data)
        return io.BytesIO(content), status, response_headers

    def close(self):
        self.pool.close()

    def _request(self, method: str, url: str, headers, body):
        origin, target = connections.origin_of(url)
        connection, reused = self.pool.take(origin)
        try:
            try:
                response = _exchange(connection, method, target, headers, body)
            except _CLOSED_WHILE_IDLE:
                if not reused:
                    raise
                connection.close()
                connection = self.pool.connect(origin)
                response = _exchange(connection, method, target, headers, body)
            content = response.read()
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self.pool.give_back(origin, connection)
        return content, response.status, CaseInsensitiveDict(response.getheaders())


def _exchange(connection, method, target, headers, body) -> http.client.HTTPResponse:
    connection.request(method, target, body=body, headers=headers)
    return connection.getresponse()


def connection_error(error: Exception) -> stripe.APIConnectionError:
    """The SDK's error for a call that got no answer, retryable when RequestsClient would retry it."""
    if isinstance(error, ssl.SSLCertVerificationError):
        message, retry = "Could not verify Stripe's SSL certificate.", False
    elif isinstance(error, ssl.SSLError) and not isinstance(error, ssl.SSLEOFError):
        message, retry = "Could not set up a secure connection to Stripe.", False
    elif isinstance(error, (OSError, http.client.HTTPException)):  # timeouts, refused, reset, malformed answers
        message, retry = "Unexpected error communicating with Stripe.", True
    else:
        message, retry = "Unexpected error communicating with Stripe.", False
    detail = textwrap.shorten(f"{type(error).__name__}: {error}", 300)
    return stripe.APIConnectionError(f"{message}\n\n(Network error: {detail})", should_retry=retry)
