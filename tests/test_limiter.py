"""The Limiter's decisions: which count a request spends, what a refusal says, and what a shared store's outage does.

Counted in this instance's memory, and in a real redis-server through
`limits` (tests/support/redis.py), which a test stops to play an outage and
starts again to end it. What reaches the client is pinned through the app in
tests/test_rate_limits.py; here each decision is checked where it is made.
"""

from __future__ import annotations

import asyncio

import pytest

from common import ratelimit
from common.errors import CheckUnavailable, RateLimited
from common.ratelimit import Limiter, MemoryCounts, parse_rates
from tests.support.clock import hold_ratelimit_clock

A, B = "203.0.113.7", "198.51.100.9"
FAILED = "Rate-limit counts unavailable"


async def ask(limiter: Limiter, scope: str, rates, client: str, **options) -> str:
    """What one request gets: "allowed", "limited N" or "unavailable N" (N its Retry-After)."""
    try:
        await limiter.check(scope, rates, client, **options)
    except RateLimited as refused:
        return f"limited {refused.retry_after}"
    except CheckUnavailable as refused:
        return f"unavailable {refused.retry_after}"
    return "allowed"


@pytest.fixture(params=["memory", "redis"])
def counts(request):
    """Counts in this instance, or in a running Redis shared by instances."""
    if request.param == "memory":
        return MemoryCounts()
    return ratelimit.LimitsCounts(request.getfixturevalue("redis_server").url)


@pytest.fixture
def redis_down(redis_server):
    """A Limiter counting in a Redis that has just stopped answering."""
    limiter = Limiter(ratelimit.LimitsCounts(redis_server.url))
    redis_server.stop()
    return limiter


@pytest.fixture
def clock(monkeypatch):
    return hold_ratelimit_clock(monkeypatch)


def outage_lines(log_lines) -> list[dict]:
    return [line for line in log_lines() if line.get("message", "").startswith(FAILED)]


def test_each_endpoint_and_each_client_spend_their_own_count(counts):
    limiter, rates = Limiter(counts), parse_rates("1/minute")

    async def requests():
        return [
            await ask(limiter, "create", rates, A),
            await ask(limiter, "create", rates, B),
            await ask(limiter, "status", rates, A),
            await ask(limiter, "create", rates, A),
            await ask(limiter, "status", rates, A),
        ]

    assert asyncio.run(requests()) == ["allowed", "allowed", "allowed", "limited 60", "limited 60"]


def test_retry_after_is_the_wait_rounded_up_and_at_least_a_second(clock):
    limiter, rates = Limiter(MemoryCounts()), parse_rates("1/2 seconds")

    async def at(moment: float) -> str:
        clock.now = moment
        return await ask(limiter, "create", rates, A)

    async def requests():
        return [await at(1000.0), await at(1000.8), await at(1001.7), await at(1002.0)]

    assert asyncio.run(requests()) == ["allowed", "limited 2", "limited 1", "allowed"]


def test_an_outage_lets_requests_through_counted_by_this_instance(redis_down):
    rates = parse_rates("1/minute")

    async def requests():
        return [
            await ask(redis_down, "create", rates, A),
            await ask(redis_down, "create", rates, B),
            await ask(redis_down, "status", rates, A),
            await ask(redis_down, "create", rates, A),
        ]

    assert asyncio.run(requests()) == ["allowed", "allowed", "allowed", "limited 60"]


def test_an_outage_counted_here_is_a_warning_naming_endpoint_store_and_failure_not_client(redis_down, log_lines):
    rates = parse_rates("10/minute")

    async def requests():
        await ask(redis_down, "create", rates, A)  # the store fails
        await ask(redis_down, "status", rates, A)  # the store is left alone: the same failure

    asyncio.run(requests())

    line = {
        "severity": "WARNING",
        "message": "Rate-limit counts unavailable; request counted by this instance alone.",
        "storage": "redis through limits",
        "error": "StorageError",
    }
    assert outage_lines(log_lines) == [{**line, "endpoint": "create"}, {**line, "endpoint": "status"}]


def test_with_fail_open_off_an_outage_refuses_the_request_and_logs_an_error(redis_down, log_lines):
    answer = asyncio.run(ask(redis_down, "create", parse_rates("10/minute"), A, fail_open=False))

    assert answer == "unavailable 5"
    assert outage_lines(log_lines) == [
        {
            "severity": "ERROR",
            "message": "Rate-limit counts unavailable; request refused.",
            "endpoint": "create",
            "storage": "redis through limits",
            "error": "StorageError",
        }
    ]


def test_an_outage_refusal_says_to_retry_once_the_store_will_be_asked_again(redis_down, monkeypatch):
    monkeypatch.setattr(ratelimit, "SHARED_PAUSE_SECONDS", 2.5)

    answer = asyncio.run(ask(redis_down, "create", parse_rates("10/minute"), A, fail_open=False))

    assert answer == "unavailable 3"


def test_after_a_failure_the_store_is_asked_again_once_the_pause_is_over_not_before(redis_server, clock, log_lines):
    limiter, rates = Limiter(ratelimit.LimitsCounts(redis_server.url)), parse_rates("10/minute")
    failed_at = clock.now

    async def request_at(moment: float) -> list[dict]:
        clock.now = moment
        assert await ask(limiter, "create", rates, A) == "allowed"
        return outage_lines(log_lines)

    async def requests():
        await asyncio.to_thread(redis_server.stop)
        failing = await request_at(failed_at)
        await asyncio.to_thread(redis_server.start)
        paused = await request_at(failed_at + ratelimit.SHARED_PAUSE_SECONDS - 0.001)
        asked_again = await request_at(failed_at + ratelimit.SHARED_PAUSE_SECONDS)
        return failing, paused, asked_again

    failing, paused, asked_again = asyncio.run(requests())

    assert [line["error"] for line in failing] == ["StorageError"]
    assert [line["error"] for line in paused] == ["StorageError"]  # the store, up again, was not asked
    assert asked_again == []
