"""Per-client-IP request limits: a moving window per client, endpoint and rate.

Rates are written the way the `limits` library writes them ("10/minute",
"100 per hour", several joined with ";"), and a client that spends one is
answered 429 with Retry-After until the oldest hit in the window ages out.

The default storage, `memory://`, counts in this instance's memory, which is
enough to blunt a script hammering one instance. Those counts are kept here,
not by `limits`: its in-memory storage starts a timer thread every 10 ms
while requests arrive (a measurable share of each request's CPU under load),
and importing `limits` adds ~15 ms to every cold start. `limits` is imported
only when `RATE_LIMIT_STORAGE_URI=redis://…` (e.g. Memorystore) shares the
counts across instances.
"""

from __future__ import annotations

import collections
import functools
import math
import re
import threading
import time
from typing import NamedTuple

import flask

from common.errors import HttpError, SettingError
from common.http import client_ip
from common.settings import Settings

# The notation `limits` parses (its util.SINGLE_EXPR and SEPARATORS), so a
# setting means the same whichever storage counts it.
_RATE = re.compile(r"^\s*([0-9]+)\s*(?:/|\s*per\s*)\s*([0-9]+)?\s*([a-z]+)\s*$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[,;|]")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400, "year": 360 * 86400}

# How often idle clients' counts are dropped, so memory follows the clients
# seen in the last window rather than every client ever seen.
SWEEP_INTERVAL_SECONDS = 60.0


class Rate(NamedTuple):
    """At most `amount` hits in any `seconds`-long window; `text` as written."""

    amount: int
    seconds: int
    text: str


def parse_rates(value: str) -> tuple[Rate, ...]:
    """'10/minute; 100/hour' → its rates; ValueError if any part is not a rate."""
    rates = []
    for part in _SEPARATORS.split(value):
        match = _RATE.match(part)
        unit = match and match.group(3).lower().removesuffix("s")
        if not match or unit not in _UNIT_SECONDS:
            raise ValueError(f"not a rate: {part!r}")
        amount, multiples = int(match.group(1)), int(match.group(2) or 1)
        rates.append(Rate(amount, multiples * _UNIT_SECONDS[unit], part.strip()))
    return tuple(rates)


class MemoryCounts:
    """Moving-window counts in this process, safe to share between threads.

    For each (rate, scope, client) it keeps the times of the hits inside the
    window, oldest first: a hit drops the expired ones from the front and is
    allowed if fewer than `amount` remain. One lock guards everything; each
    hit holds it for a few microseconds.
    """

    def __init__(self):
        self._hits: dict[tuple, collections.deque] = {}
        self._lock = threading.Lock()
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS

    def hit(self, rate: Rate, scope: str, key: str) -> float | None:
        """Count one hit: None if allowed, else the seconds until one would be."""
        now = time.monotonic()
        window_start = now - rate.seconds
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            hits = self._hits.get((rate, scope, key))
            if hits is None:
                hits = self._hits[(rate, scope, key)] = collections.deque()
            while hits and hits[0] <= window_start:
                hits.popleft()
            if len(hits) >= rate.amount:
                return hits[0] - window_start if hits else float(rate.seconds)
            hits.append(now)
            return None

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL_SECONDS
        idle = [id_ for id_, hits in self._hits.items() if not hits or hits[-1] <= now - id_[0].seconds]
        for id_ in idle:
            del self._hits[id_]


class SharedCounts:
    """Counts kept by a server (Redis, Memcached…) through `limits`, shared by instances."""

    def __init__(self, storage_uri: str):
        from limits import storage, strategies

        try:
            backend = storage.storage_from_string(storage_uri)
        except Exception as error:  # limits raises several types for a bad or unusable URI
            raise SettingError("RATE_LIMIT_STORAGE_URI", f"is not a usable storage URI ({error.__class__.__name__})")
        self._limiter = strategies.MovingWindowRateLimiter(backend)

    @staticmethod
    @functools.cache
    def _item(text: str):
        from limits import parse

        return parse(text)

    def hit(self, rate: Rate, scope: str, key: str) -> float | None:
        item = self._item(rate.text)
        if self._limiter.hit(item, scope, key):
            return None
        return self._limiter.get_window_stats(item, scope, key).reset_time - time.time()


@functools.cache
def _limiter(storage_uri: str) -> MemoryCounts | SharedCounts:
    if storage_uri.strip() == "memory://":
        return MemoryCounts()
    return SharedCounts(storage_uri)


@functools.cache
def _items(setting: str, value: str) -> tuple[Rate, ...]:
    try:
        return parse_rates(value)
    except ValueError:
        raise SettingError(setting, "must be a rate like 10/minute (several may be joined with ;)")


def check(request: flask.Request, settings: Settings, scope: str, setting: str, value: str) -> None:
    """Count this request against its client's limit; 429 once it is spent."""
    limiter = _limiter(settings.rate_limit_storage_uri)
    key = client_ip(request, settings.trusted_proxy_hops)
    for rate in _items(setting, value):
        wait = limiter.hit(rate, scope, key)
        if wait is not None:
            retry_after = max(1, math.ceil(wait))
            raise HttpError(429, "Too many requests; slow down and retry later.", {"Retry-After": str(retry_after)})
