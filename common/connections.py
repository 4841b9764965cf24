"""Keep-alive HTTPS connections to Stripe, shared by all threads, opened ahead of need.

Standard library only, so a new worker process can start opening its
connection to Stripe before it has imported anything else (see `open_ahead`).

`ConnectionPool` hands out `http.client` connections: a thread takes an idle
one (or opens one), makes one request, reads the whole answer and gives it
back; the lock is held only to take or return one, and any thread may use a
connection another opened. TLS is verified against the CA bundle the Stripe
SDK ships, with hostname checking, as the SDK's own transport does; an HTTPS
proxy from the environment (https_proxy, no_proxy) is honoured.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import ssl
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_API_BASE = "https://api.stripe.com"

# (connect, read) seconds: with the SDK's retries, three attempts stay well
# inside the function timeout.
TIMEOUT_SECONDS = (3.05, 10)

# Idle connections older than this are closed instead of reused: NAT
# gateways (Cloud NAT's default is 30 s for established TCP) and servers drop
# idle connections silently, and a request sent on one would wait for the
# read timeout before failing.
MAX_IDLE_SECONDS = 25.0


def _stripe_ca_bundle() -> str:
    """The CA bundle inside the stripe package, found without importing it (see `open_ahead`)."""
    return str(Path(importlib.util.find_spec("stripe").origin).parent / "data" / "ca-certificates.crt")


class ConnectionPool:
    def __init__(self, timeout: tuple[float, float], size: int, ca_file: str | None = None):
        self.connect_timeout, self.read_timeout = timeout
        self.size = size
        self._ca_file = ca_file
        self._idle: dict[tuple, list[tuple[float, http.client.HTTPConnection]]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def take(self, origin: tuple) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to `origin` (reused=True), or a new one."""
        now = time.monotonic()
        expired, connection = [], None
        with self._lock:
            idle = self._idle.get(origin, [])
            while idle and connection is None:
                since, candidate = idle.pop()  # the most recently used: the likeliest to be alive
                if now - since > MAX_IDLE_SECONDS:
                    expired.append(candidate)
                else:
                    connection = candidate
        for old in expired:
            old.close()
        if connection is not None:
            return connection, True
        return self.connect(origin), False

    def give_back(self, origin: tuple, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.size:
                idle.append((time.monotonic(), connection))
                return
        connection.close()

    def connect(self, origin: tuple) -> http.client.HTTPConnection:
        scheme, host, port = origin
        proxy = _environment_proxy(scheme, host)
        address = (proxy.hostname, proxy.port or 80) if proxy else (host, port)
        if scheme == "https":
            connection = http.client.HTTPSConnection(*address, timeout=self.connect_timeout,
                                                     context=self._tls_context())
        else:
            connection = http.client.HTTPConnection(*address, timeout=self.connect_timeout)
        if proxy:
            connection.set_tunnel(host, port)
        connection.connect()
        connection.sock.settimeout(self.read_timeout)
        return connection

    def idle_count(self, origin: tuple) -> int:
        with self._lock:
            return len(self._idle.get(origin, []))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, connection in connections:
                connection.close()

    def _tls_context(self) -> ssl.SSLContext:
        # Built once: loading the CA bundle costs a few ms of CPU per context.
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=self._ca_file or _stripe_ca_bundle())
        return self._tls


def origin_of(url: str) -> tuple[tuple, str]:
    """((scheme, host, port), path and query) of an absolute URL."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), target


def _environment_proxy(scheme: str, host: str):
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return urlsplit(proxy if "://" in proxy else f"http://{proxy}")


# -- the process's pool, and opening its first connection early ---------------

_shared: ConnectionPool | None = None
_shared_lock = threading.Lock()


def serving_threads() -> int:
    """Requests this process serves at once: functions-framework's gunicorn THREADS (default 4 × CPUs)."""
    return int(os.environ.get("THREADS") or (os.cpu_count() or 1) * 4)


def shared() -> ConnectionPool:
    """The pool every Stripe call of this process uses: one idle connection kept per serving thread."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ConnectionPool(TIMEOUT_SECONDS, serving_threads())
        return _shared


def open_ahead() -> threading.Thread | None:
    """Start opening one connection to the Stripe API in the background; None if there is no need.

    Called in a new worker process, before it serves anything. The first
    request spends its first tens of milliseconds importing the Stripe SDK
    and building its client: CPU work, while opening a connection is mostly
    waiting for the network (a TCP and a TLS handshake, two round trips to
    Stripe). Done on this thread meanwhile, the wait is off the first
    request's path; the connection goes into the pool, idle, and whichever
    thread calls Stripe first takes it. Nothing is sent on it: no API call,
    nothing in Stripe's logs. Any failure is left for that first call to
    meet and report.

    A function without a Stripe key (the webhook, which never calls Stripe)
    opens nothing.
    """
    if not os.environ.get("STRIPE_SECRET_KEY", "").strip():
        return None
    base = (os.environ.get("STRIPE_API_BASE") or "").strip() or DEFAULT_API_BASE
    thread = threading.Thread(target=_open, args=(base,), name="stripe-open-ahead", daemon=True)
    thread.start()
    return thread


def _open(base: str) -> None:
    try:
        pool = shared()
        origin, _ = origin_of(base)
        pool.give_back(origin, pool.connect(origin))
    except Exception:  # noqa: BLE001 - the first real call reports any problem with its own error
        pass
