"""The counts behind RATE_LIMIT_*: in memory, and in Redis through `limits`.

`common.ratelimit` counts in memory itself instead of through the `limits`
library (whose memory storage starts a timer thread every 10 ms under load),
so these tests pin it to the same notation and the same moving-window
answers, including under concurrent requests. The Redis path runs against a
real redis-server; Firestore's counts have their own tests
(tests/test_ratelimit_firestore.py).
"""

from __future__ import annotations

import asyncio
import threading

import limits
import pytest

from common import ratelimit
from common.ratelimit import MemoryCounts, Rate, parse_rates
from common.ratelimit_firestore import FirestoreCounts
from tests.support.clock import hold_ratelimit_clock


@pytest.mark.parametrize(
    "text",
    ["10/minute", "10 per minute", "1/second; 5/minute", "2/3 hours", "100/day,1000/month|5000/year", " 7 / Seconds "],
)
def test_rates_mean_what_limits_says_they_mean(text):
    ours = [(rate.amount, rate.seconds) for rate in parse_rates(text)]
    theirs = [(item.amount, item.get_expiry()) for item in limits.parse_many(text)]
    assert ours == theirs


@pytest.mark.parametrize("text", ["lots", "10/fortnight", "10/minute;", "", "/minute", "ten/minute"])
def test_what_limits_refuses_is_refused(text):
    with pytest.raises(ValueError):
        limits.parse_many(text)
    with pytest.raises(ValueError):
        parse_rates(text)


@pytest.fixture
def clock(monkeypatch):
    return hold_ratelimit_clock(monkeypatch)


def test_the_window_moves_with_the_oldest_hit(clock):
    counts, rate = MemoryCounts(), Rate(2, 60, "2/minute")

    assert counts.count(rate, "create", "203.0.113.7") is None
    clock.now += 20
    assert counts.count(rate, "create", "203.0.113.7") is None
    clock.now += 10
    assert counts.count(rate, "create", "203.0.113.7") == pytest.approx(30)  # the first hit leaves the window at +60
    clock.now += 30
    assert counts.count(rate, "create", "203.0.113.7") is None
    assert counts.count(rate, "create", "203.0.113.7") == pytest.approx(20)


def test_clients_scopes_and_rates_are_counted_apart(clock):
    counts, rate = MemoryCounts(), Rate(1, 60, "1/minute")

    assert counts.count(rate, "create", "203.0.113.7") is None
    assert counts.count(rate, "create", "198.51.100.9") is None
    assert counts.count(rate, "status", "203.0.113.7") is None
    assert counts.count(Rate(1, 3600, "1/hour"), "create", "203.0.113.7") is None
    assert counts.count(rate, "create", "203.0.113.7") is not None


def test_a_zero_rate_refuses_everything_for_a_whole_window(clock):
    assert MemoryCounts().count(Rate(0, 60, "0/minute"), "create", "203.0.113.7") == 60


def test_idle_clients_are_forgotten(clock):
    counts, rate = MemoryCounts(), Rate(5, 60, "5/minute")
    counts.count(rate, "create", "203.0.113.7")

    clock.now += ratelimit.SWEEP_INTERVAL_SECONDS + 61
    counts.count(rate, "create", "198.51.100.9")

    assert [key for (_, _, key) in counts._hits] == ["198.51.100.9"]


def test_idle_clients_are_forgotten_once_a_sweep_interval_has_passed_not_before(clock):
    counts, started = MemoryCounts(), clock.now
    counts.count(Rate(1, 1, "1/second"), "create", "203.0.113.7")

    clock.now = started + ratelimit.SWEEP_INTERVAL_SECONDS - 0.5  # idle for a while, but no sweep is due
    counts.count(Rate(5, 60, "5/minute"), "create", "198.51.100.9")
    before = sorted(key for (_, _, key) in counts._hits)
    clock.now = started + ratelimit.SWEEP_INTERVAL_SECONDS
    counts.count(Rate(5, 60, "5/minute"), "create", "198.51.100.9")
    after = sorted(key for (_, _, key) in counts._hits)

    assert before == ["198.51.100.9", "203.0.113.7"]
    assert after == ["198.51.100.9"]


def test_concurrent_hits_allow_exactly_the_limit():
    counts, rate = MemoryCounts(), Rate(100, 60, "100/minute")
    allowed = []
    start = threading.Barrier(16)

    def client():
        start.wait()
        allowed.extend(counts.count(rate, "create", "203.0.113.7") is None for _ in range(50))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 100


def test_every_rate_of_an_endpoint_is_counted(clock):
    counts, rates = MemoryCounts(), parse_rates("2/minute; 3/hour")

    answers = [asyncio.run(counts.hit(rates, "create", "203.0.113.7")) for _ in range(3)]
    clock.now += 61
    after_a_minute = [asyncio.run(counts.hit(rates, "create", "203.0.113.7")) for _ in range(2)]

    assert answers[:2] == [None, None] and answers[2] == pytest.approx(60)
    assert after_a_minute[0] is None  # the hour's third hit
    assert after_a_minute[1] is not None  # the hour is spent although the minute is not


def test_counts_kept_through_limits_give_the_same_answers():
    """The path a redis:// storage takes, exercised with limits' own memory storage."""
    counts, rates = ratelimit.LimitsCounts("memory://"), parse_rates("2/minute")

    async def three_hits():
        return [await counts.hit(rates, "create", "203.0.113.7") for _ in range(3)]

    answers = asyncio.run(three_hits())

    assert answers[:2] == [None, None]
    assert 0 < answers[2] <= 60


def test_an_unusable_storage_uri_is_a_setting_error():
    with pytest.raises(ratelimit.SettingError) as refused:
        ratelimit.open_counts("nosuchscheme://somewhere")
    assert refused.value.name == "RATE_LIMIT_STORAGE_URI"
    assert refused.value.problem == "is not a usable storage URI (ConfigurationError)"


def test_each_storage_uri_opens_its_counts():
    assert isinstance(ratelimit.open_counts("memory://"), MemoryCounts)
    assert isinstance(ratelimit.open_counts("redis://127.0.0.1:1"), ratelimit.LimitsCounts)
    firestore_counts = ratelimit.open_counts("firestore://limits_here")
    assert firestore_counts.description == "Firestore collection limits_here"
    assert ratelimit.open_counts("firestore://").description == "Firestore collection rate_limits"


def test_counts_in_the_database_are_kept_in_the_deployments_project():
    counts = ratelimit.open_counts("firestore://", project="payments-prod")

    assert isinstance(counts, FirestoreCounts) and counts.project == "payments-prod"


def test_a_storage_is_described_by_its_kind_alone_never_its_address_or_credentials():
    """The description is logged; a URI may carry a password, and "://" again in its query."""
    counts = ratelimit.LimitsCounts("redis://:a-password@10.0.0.3:6379/0?client_name=https://payments.example")

    assert counts.description == "redis through limits"


# --------------------------------------------------------------------------
# Redis, through limits and the redis package, against a real redis-server


async def hits(counts, rates, n: int, key: str = "203.0.113.7") -> list[float | None]:
    return [await counts.hit(rates, "create_embedded_session", key) for _ in range(n)]


def test_redis_allows_exactly_the_rate_then_says_how_long_to_wait(redis_server):
    counts = ratelimit.LimitsCounts(redis_server.url)

    answers = asyncio.run(hits(counts, parse_rates("3/minute"), 4))

    assert answers[:3] == [None, None, None]
    assert 59 < answers[3] <= 60


def test_redis_counts_are_shared_by_every_client_of_the_server(redis_server):
    """Two instances' counts, each with its own connection, add up to one limit."""
    rates = parse_rates("4/minute")

    async def two_instances():
        first, second = ratelimit.LimitsCounts(redis_server.url), ratelimit.LimitsCounts(redis_server.url)
        together = await asyncio.gather(
            *(counts.hit(rates, "create_embedded_session", "203.0.113.7") for counts in [first, second] * 5)
        )
        other_client = await first.hit(rates, "create_embedded_session", "198.51.100.9")
        return together, other_client

    together, other_client = asyncio.run(two_instances())

    assert together.count(None) == 4
    assert other_client is None


def test_redis_down_is_counts_unavailable(redis_server):
    counts = ratelimit.LimitsCounts(redis_server.url)
    redis_server.stop()

    with pytest.raises(ratelimit.CountsUnavailable):
        asyncio.run(hits(counts, parse_rates("3/minute"), 1))


def test_redis_counts_every_rate_of_an_endpoint(redis_server):
    counts = ratelimit.LimitsCounts(redis_server.url)

    answers = asyncio.run(hits(counts, parse_rates("5/minute; 1/hour"), 2))

    assert answers[0] is None
    assert answers[1] is not None and 3599 < answers[1] <= 3600  # the hour is spent although the minute is not


def test_redis_says_to_wait_until_the_oldest_hit_leaves_the_window_even_under_a_second(redis_server):
    counts, rates = ratelimit.LimitsCounts(redis_server.url), parse_rates("1/3 seconds")

    async def hit_then_again_later():
        first = await counts.hit(rates, "create_embedded_session", "203.0.113.7")
        await asyncio.sleep(2.2)
        return first, await counts.hit(rates, "create_embedded_session", "203.0.113.7")

    first, later = asyncio.run(hit_then_again_later())

    assert first is None
    # The first hit leaves the window 3 s after it, and 2.2 s or more have passed.
    assert later is not None and 0 < later <= 0.8


def test_a_storage_uri_naming_limits_asyncio_storage_is_used_as_written(redis_server):
    counts = ratelimit.LimitsCounts("async+" + redis_server.url)

    answers = asyncio.run(hits(counts, parse_rates("1/minute"), 2))

    assert counts.description == "redis through limits"
    assert answers[0] is None
    assert answers[1] is not None and 59 < answers[1] <= 60
