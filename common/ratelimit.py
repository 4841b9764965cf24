"""Per-client request limits, counted in this instance or in a store all instances share.

Rates are written the way the `limits` library writes them ("10/minute",
"100 per hour", several joined with ";"), and a client that spends one is
answered 429 with Retry-After until it may try again.

`RATE_LIMIT_STORAGE_URI` chooses where the counts live:

- `memory://` (the default): this instance's memory, a moving window. Enough
  to blunt a script hammering one instance; N instances allow N times the
  rate, and a new instance starts from zero. Those counts are kept here, not
  by `limits`: its in-memory storage starts a timer thread every 10 ms while
  requests arrive, and importing `limits` adds ~15 ms to every cold start.
- `firestore://` or `firestore://COLLECTION`: a fixed window per client,
  endpoint and rate in Firestore, one write per counted request
  (`common.ratelimit_firestore`); no new infrastructure.
- `redis://host:6379` (e.g. Memorystore): a moving window kept by Redis
  through `limits`' asyncio storage and the `redis` package, imported only then.

A shared store that does not answer within SHARED_TIMEOUT_SECONDS, or fails,
must not take the service down with it: the request is then counted by this
instance alone ("fail open", always for status, for create unless
RATE_LIMIT_FAIL_OPEN_CREATE=false) or refused with 503 ("fail closed"), and a
log line says which. The store is then left alone for SHARED_PAUSE_SECONDS,
so an outage does not add a timeout to every request.
"""

from __future__ import annotations

import asyncio
import collections
import math
import re
import threading
import time
from typing import Any, NamedTuple, Protocol

from common import logs
from common.errors import CheckUnavailable, RateLimited, SettingError

# The notation `limits` parses (its util.SINGLE_EXPR and SEPARATORS), so a
# setting means the same whichever storage counts it.
_RATE = re.compile(r"^\s*([0-9]+)\s*(?:/|\s*per\s*)\s*([0-9]+)?\s*([a-z]+)\s*$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[,;|]")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400, "year": 360 * 86400}

# How often idle clients' counts are dropped, so memory follows the clients
# seen in the last window rather than every client ever seen.
SWEEP_INTERVAL_SECONDS = 60.0

# The longest a request waits for a shared store before it is counted here
# instead (or refused): a healthy store answers in milliseconds, and the first
# call of an instance (a new connection, an access token) well within this.
SHARED_TIMEOUT_SECONDS = 1.0
SHARED_PAUSE_SECONDS = 5.0


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


class CountsUnavailable(Exception):
    """A shared store could not count this hit (unreachable, refused, or too slow)."""


class Counts(Protocol):
    description: str

    async def hit(self, rates: tuple[Rate, ...], scope: str, key: str) -> float | None:
        """Count one hit against `rates`: None if every rate allows it, else the seconds until they would.

        A shared store raises CountsUnavailable when it cannot answer.
        """

    async def close(self) -> None: ...


class MemoryCounts:
    """Moving-window counts in this process, safe to share between threads.

    For each (rate, scope, client) it keeps the times of the hits inside the
    window, oldest first: a hit drops the expired ones from the front and is
    allowed if fewer than `amount` remain. One lock guards everything; each
    hit holds it for a few microseconds.
    """

    description = "this instance's memory"

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

    async def hit(self, rates: tuple[Rate, ...], scope: str, key: str) -> float | None:
        for rate in rates:
            wait = self.count(rate, scope, key)
            if wait is not None:
                return wait
        return None

    async def close(self) -> None:
        pass

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL_SECONDS
        idle = [id_ for id_, hits in self._hits.items() if not hits or hits[-1] <= now - id_[0].seconds]
        for id_ in idle:
            del self._hits[id_]


class LimitsCounts:
    """Moving-window counts kept by a server through `limits` (Redis, e.g. Memorystore), shared by instances."""

    def __init__(self, storage_uri: str):
        from limits.aio import strategies
        from limits.storage import storage_from_string

        # limits names its asyncio storages async+SCHEME; Redis through the redis package's asyncio client.
        uri = storage_uri if storage_uri.startswith("async+") else "async+" + storage_uri
        options = {"implementation": "redispy"} if "redis" in uri.split("://", 1)[0] else {}
        try:
            self._storage = storage_from_string(uri, wrap_exceptions=True, **options)
        except Exception as error:  # noqa: BLE001 - limits raises several types for a bad or unusable URI
            raise SettingError(
                "RATE_LIMIT_STORAGE_URI", f"is not a usable storage URI ({error.__class__.__name__})"
            ) from None
        self.description = f"{uri.split('://', 1)[0].removeprefix('async+')} through limits"
        self._limiter = strategies.MovingWindowRateLimiter(self._storage)
        self._items: dict[str, Any] = {}  # limits' parsed rates, by their text

    async def hit(self, rates: tuple[Rate, ...], scope: str, key: str) -> float | None:
        from limits import parse
        from limits.errors import StorageError

        try:
            for rate in rates:
                item = self._items.get(rate.text) or self._items.setdefault(rate.text, parse(rate.text))
                if not await self._limiter.hit(item, scope, key):
                    stats = await self._limiter.get_window_stats(item, scope, key)
                    return max(0.0, stats.reset_time - time.time())
        except (StorageError, OSError) as error:
            raise CountsUnavailable(error.__class__.__name__) from error
        return None

    async def close(self) -> None:
        pass


def open_counts(storage_uri: str, project: str | None = None) -> Counts:
    """The counts `storage_uri` names; SettingError if it names nothing usable."""
    scheme, _, rest = storage_uri.partition("://")
    if storage_uri == "memory://":
        return MemoryCounts()
    if scheme == "firestore":
        from common.ratelimit_firestore import DEFAULT_COLLECTION, FirestoreCounts

        return FirestoreCounts(rest or DEFAULT_COLLECTION, project=project)
    return LimitsCounts(storage_uri)


class Limiter:
    """Checks each request against its client's rates for one endpoint (scope)."""

    def __init__(self, counts: Counts):
        self.counts = counts
        self.shared = not isinstance(counts, MemoryCounts)
        # Where a request is counted while the shared store is unreachable.
        self._fallback = MemoryCounts() if self.shared else counts
        self._paused_until = float("-inf")  # monotonic time until which the shared store is not asked
        self._last_failure = ""

    async def check(self, scope: str, rates: tuple[Rate, ...], client: str, *, fail_open: bool = True) -> None:
        """Count this request; RateLimited once the client has spent a rate.

        When a shared store cannot count it: counted by this instance alone
        if `fail_open`, else CheckUnavailable. Either way a log line names
        the endpoint (`scope`) and the failure, never the client.
        """
        try:
            wait = await self._hit(rates, scope, client)
        except CountsUnavailable as error:
            outcome = "counted by this instance alone" if fail_open else "refused"
            logs.write(
                "WARNING" if fail_open else "ERROR",
                f"Rate-limit counts unavailable; request {outcome}.",
                endpoint=scope,
                storage=self.counts.description,
                error=str(error),
            )
            if not fail_open:
                raise CheckUnavailable("rate-limit counts unavailable", math.ceil(SHARED_PAUSE_SECONDS)) from None
            wait = await self._fallback.hit(rates, scope, client)
        if wait is not None:
            raise RateLimited(max(1, math.ceil(wait)))

    async def _hit(self, rates: tuple[Rate, ...], scope: str, client: str) -> float | None:
        """Counted where the counts live; CountsUnavailable while a shared store fails or is paused."""
        if not self.shared:
            return await self.counts.hit(rates, scope, client)
        if time.monotonic() < self._paused_until:
            raise CountsUnavailable(self._last_failure)
        try:
            async with asyncio.timeout(SHARED_TIMEOUT_SECONDS):
                return await self.counts.hit(rates, scope, client)
        except (CountsUnavailable, TimeoutError) as error:
            self._last_failure = "TimeoutError" if isinstance(error, TimeoutError) else str(error)
            self._paused_until = time.monotonic() + SHARED_PAUSE_SECONDS
            raise CountsUnavailable(self._last_failure) from None

    async def close(self) -> None:
        await self.counts.close()
