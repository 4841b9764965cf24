"""Per-client request limits: a moving window per client, endpoint and rate.

Rates are written the way the `limits` library writes them ("10/minute",
"100 per hour", several joined with ";"), and a client that spends one is
answered 429 with Retry-After until the oldest hit in the window ages out.

The default storage, `memory://`, counts in this instance's memory, which is
enough to blunt a script hammering one instance. Those counts are kept here,
not by `limits`: its in-memory storage starts a timer thread every 10 ms
while requests arrive (a measurable share of each request's CPU under load),
and importing `limits` adds ~15 ms to every cold start. `limits` is imported
only when `RATE_LIMIT_STORAGE_URI=redis://…` (e.g. Memorystore) shares the
counts across instances, through its asyncio storage.
"""

from __future__ import annotations

import collections
import math
import re
import threading
import time
from typing import NamedTuple, Protocol

from common.errors import RateLimited, SettingError

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

    def count(self, rate: Rate, scope: str, key: str) -> float | None:
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

    async def hit(self, rate: Rate, scope: str, key: str) -> float | None:
        return self.count(rate, scope, key)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL_SECONDS
        idle = [id_ for id_, hits in self._hits.items() if not hits or hits[-1] <= now - id_[0].seconds]
        for id_ in idle:
            del self._hits[id_]


class Counts(Protocol):
    async def hit(self, rate: Rate, scope: str, key: str) -> float | None:
        """Count one hit: None if allowed, else the seconds until one would be."""


class SharedCounts:
    """Counts kept by a server (Redis, e.g. Memorystore) through `limits`, shared by instances."""

    def __init__(self, storage_uri: str):
        from limits.aio import strategies
        from limits.storage import storage_from_string

        # limits names its asyncio storages async+SCHEME; Redis through the redis package's asyncio client.
        uri = storage_uri if storage_uri.startswith("async+") else "async+" + storage_uri
        options = {"implementation": "redispy"} if "redis" in uri.split("://", 1)[0] else {}
        try:
            backend = storage_from_string(uri, **options)
        except Exception as error:  # noqa: BLE001 - limits raises several types for a bad or unusable URI
            raise SettingError(
                "RATE_LIMIT_STORAGE_URI", f"is not a usable storage URI ({error.__class__.__name__})"
            ) from None
        self._limiter = strategies.MovingWindowRateLimiter(backend)
        self._items: dict[str, object] = {}

    async def hit(self, rate: Rate, scope: str, key: str) -> float | None:
        from limits import parse

        item = self._items.get(rate.text) or self._items.setdefault(rate.text, parse(rate.text))
        if await self._limiter.hit(item, scope, key):
            return None
        stats = await self._limiter.get_window_stats(item, scope, key)
        return stats.reset_time - time.time()


class Limiter:
    """Checks each request against its client's rates for one endpoint (scope)."""

    def __init__(self, storage_uri: str):
        self.counts: Counts = MemoryCounts() if storage_uri == "memory://" else SharedCounts(storage_uri)

    async def check(self, scope: str, rates: tuple[Rate, ...], client: str) -> None:
        """Count this request; RateLimited once the client has spent a rate."""
        for rate in rates:
            wait = await self.counts.hit(rate, scope, client)
            if wait is not None:
                raise RateLimited(max(1, math.ceil(wait)))
