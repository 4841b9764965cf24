"""The Stripe client this instance shares, and the API version it speaks.

The API version is pinned here rather than left to the SDK, so upgrading the
`stripe` package never silently changes request or event shapes. Parameters
whose names changed between versions are derived from the pin in one place.
"""

from __future__ import annotations

import os
import textwrap
import threading
import urllib.request
from urllib.parse import quote, urlsplit

import stripe
import urllib3

from common.errors import HttpError, SettingError
from common.settings import Settings

API_VERSION = "2026-10-28.endive"

# Stripe API 2026-03-25.dahlia renamed ui_mode "embedded" to "embedded_page"
# (and Stripe.js initEmbeddedCheckout to createEmbeddedCheckoutPage).
EMBEDDED_PAGE_SINCE = "2026-03-25"

MAX_NETWORK_RETRIES = 2
# (connect, read) seconds: three attempts stay well inside the function timeout.
TIMEOUT_SECONDS = (3.05, 10)

DEFAULT_API_BASE = "https://api.stripe.com"

_client: stripe.StripeClient | None = None
_lock = threading.Lock()


class PooledHTTPClient(stripe.HTTPClient):
    """How the Stripe SDK reaches Stripe: one pool of keep-alive connections for all threads.

    The SDK's default RequestsClient keeps a `requests.Session` per thread
    and, on every call, scans the environment for proxy settings and looks
    for a .netrc file. Measured against the local stand-in, a create call
    cost ~2.0 ms of CPU through it and ~0.9 ms through this client; at 64
    concurrent requests on one instance that CPU is what limits throughput.

    urllib3's PoolManager is documented as thread-safe: a thread takes an
    idle connection (or opens one), uses it for one request and puts it
    back. The pool keeps up to `pool_size` idle connections per host, one
    per serving thread, so keep-alive survives full concurrency. Errors are
    classified the way RequestsClient classifies them, so the SDK retries
    the same failures (timeouts, refused or dropped connections) and not
    certificate failures. An HTTPS proxy from the environment
    (https_proxy/no_proxy) is honoured as requests honours it, but is
    looked up once, when the client is made.
    """

    name = "urllib3"

    def __init__(self, timeout: tuple[float, float], pool_size: int, api_base: str = DEFAULT_API_BASE):
        super().__init__()
        options = dict(
            num_pools=4,
            maxsize=pool_size,
            retries=False,  # the SDK retries, with backoff and idempotency keys
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            cert_reqs="CERT_REQUIRED",
            ca_certs=stripe.ca_bundle_path,
        )
        proxy = _environment_proxy(api_base)
        self._pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)

    def request(self, method, url, headers, post_data=None):
        return self._request(method, url, headers, post_data, stream=False)

    def request_stream(self, method, url, headers, post_data=None):
        return self._request(method, url, headers, post_data, stream=True)

    def _request(self, method, url, headers, post_data, stream: bool):
        try:
            response = self._pool.request(
                method.upper(), url, headers=headers, body=post_data, redirect=False, preload_content=not stream
            )
        except Exception as error:
            raise _connection_error(error) from error
        return (response if stream else response.data), response.status, response.headers

    def close(self):
        self._pool.clear()


def _environment_proxy(url: str) -> str | None:
    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname or ""
    proxy = urllib.request.getproxies().get(scheme)
    return proxy if proxy and not urllib.request.proxy_bypass(host) else None


def _connection_error(error: Exception) -> stripe.APIConnectionError:
    """The SDK's error for a failed call, retryable exactly when RequestsClient says so."""
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, urllib3.exceptions.SSLError):
        message, retry = "Could not verify Stripe's SSL certificate.", False
    elif isinstance(error, (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError,
                            urllib3.exceptions.ProxyError, ConnectionError)):
        message, retry = "Unexpected error communicating with Stripe.", True
    else:
        message, retry = "Unexpected error communicating with Stripe.", False
    detail = textwrap.shorten(f"{type(error).__name__}: {error}", 300)
    return stripe.APIConnectionError(f"{message}\n\n(Network error: {detail})", should_retry=retry)


def serving_threads() -> int:
    """Requests one instance serves at once: functions-framework's gunicorn THREADS."""
    return int(os.environ.get("THREADS") or (os.cpu_count() or 1) * 4)


def embedded_ui_mode(api_version: str = API_VERSION) -> str:
    """The ui_mode value that means Embedded Checkout on `api_version`."""
    return "embedded_page" if api_version[:10] >= EMBEDDED_PAGE_SINCE else "embedded"


def get_client(settings: Settings) -> stripe.StripeClient:
    """One client per process, created on first use and reused for keep-alive.

    StripeClient retries nothing unless told to; idempotent retries of POSTs
    are safe because the SDK attaches an idempotency key to each of them.
    """
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
                _client = stripe.StripeClient(
                    settings.stripe_secret_key(),
                    stripe_version=API_VERSION,
                    base_addresses=base,
                    max_network_retries=MAX_NETWORK_RETRIES,
                    http_client=PooledHTTPClient(
                        TIMEOUT_SECONDS, serving_threads(), settings.stripe_api_base or DEFAULT_API_BASE
                    ),
                )
    return _client


def create_checkout_session(settings: Settings, params: dict, idempotency_key: str | None = None) -> dict:
    """Create a Checkout Session; returns it as Stripe's JSON object."""
    options = {"idempotency_key": idempotency_key} if idempotency_key else {}
    return _call(settings, "post", "/v1/checkout/sessions", {**params, **options})


def retrieve_checkout_session(settings: Settings, session_id: str) -> dict:
    """The Checkout Session with this id, as Stripe's JSON object."""
    return _call(settings, "get", f"/v1/checkout/sessions/{quote(session_id, safe='')}", {})


def _call(settings: Settings, method: str, path: str, params: dict) -> dict:
    """One API call through the shared client, answered as plain JSON.

    `raw_request` takes the same road as `client.v1.…` (pinned version, key,
    idempotency keys, retries, the same StripeError classes) but skips
    building a StripeObject tree from the answer: for a Checkout Session
    that cost ~0.4 ms of CPU per call, a fifth of a create request, and the
    handlers only read a few fields. Request options (idempotency_key) are
    passed among the params, which is how `raw_request` takes them.
    """
    return get_client(settings).raw_request(method, path, **params).data


def reset_client() -> None:
    """Drop the shared client, so the next request builds one from fresh settings."""
    global _client
    with _lock:
        _client = None


def key_mode(settings: Settings) -> str:
    """'live' or 'test': which Stripe mode the configured key works in."""
    return "live" if "_live_" in settings.stripe_secret_key()[:8] else "test"


def as_http_error(error: stripe.StripeError) -> HttpError:
    """Translate a Stripe failure into the answer our caller can act on.

    Stripe's own message is not passed on: it can describe our request in
    ways that help no buyer, and the log line already records the class.
    """
    if isinstance(error, stripe.IdempotencyError):
        return HttpError(409, "This Idempotency-Key was already used with a different request body.")
    if isinstance(error, stripe.RateLimitError):
        return HttpError(503, "Payment provider is busy; try again shortly.", {"Retry-After": "2"})
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return SettingError("STRIPE_SECRET_KEY", "was rejected by Stripe")
    return HttpError(502, "Payment provider is unavailable; try again shortly.")
