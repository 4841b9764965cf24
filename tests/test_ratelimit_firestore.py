"""Rate-limit counts in Firestore, through the real client on the Firestore emulator.

Each test gets an empty project. What the counts wrote is read back with the
plain Firestore client, as an operator would.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from google.cloud import firestore

from common.ratelimit import CountsUnavailable, parse_rates
from common.ratelimit_firestore import FirestoreCounts, document_id
from tests.support.firestore import unique_project_id

ENDPOINT = "create_embedded_session"
CLIENT = "203.0.113.7"
# A day-long window: a test never straddles two windows (except within seconds of midnight UTC).
THREE_A_DAY = parse_rates("3/day")


@pytest.fixture
def project(firestore_project):
    """An empty Firestore project on the emulator."""
    return firestore_project


def run(project: str, work):
    """Run `work(counts)` with fresh counts on `project`, closing its client after."""

    async def main():
        counts = FirestoreCounts("rate_limits", project=project)
        try:
            return await work(counts)
        finally:
            await counts.close()

    return asyncio.run(main())


def stored(project: str) -> dict[str, dict]:
    client = firestore.Client(project=project)
    try:
        return {doc.id: doc.to_dict() for doc in client.collection("rate_limits").stream()}
    finally:
        client.close()


def hits(n: int, rates=THREE_A_DAY, client: str = CLIENT):
    async def work(counts):
        return [await counts.hit(rates, ENDPOINT, client) for _ in range(n)]

    return work


def test_exactly_the_rate_is_allowed_then_the_wait_is_until_the_window_ends(project):
    answers = run(project, hits(5))

    now = time.time()
    window_end = now - now % 86400 + 86400
    assert answers[:3] == [None, None, None]
    assert answers[3] == pytest.approx(window_end - now, abs=5)
    assert answers[4] == pytest.approx(answers[3], abs=5)


def test_a_window_is_one_document_with_its_count_and_expiry(project):
    run(project, hits(2))

    now = time.time()
    start = now - now % 86400
    documents = stored(project)
    assert list(documents) == [document_id(ENDPOINT, THREE_A_DAY[0], start, CLIENT)]
    assert documents[document_id(ENDPOINT, THREE_A_DAY[0], start, CLIENT)] == {
        "count": 2,
        "expires_at": datetime.fromtimestamp(start + 86400, UTC),
    }


def test_the_client_address_is_not_stored(project):
    run(project, hits(1))

    ((document_key, document),) = stored(project).items()
    assert CLIENT not in document_key and CLIENT not in repr(document)


def test_instances_counting_at_the_same_moment_allow_exactly_the_rate(project):
    """Two clients (two instances) each hitting concurrently: the increments never lose a count."""
    rates = parse_rates("10/day")

    async def work(counts):
        other = FirestoreCounts("rate_limits", project=project)
        try:
            return await asyncio.gather(*(instance.hit(rates, ENDPOINT, CLIENT) for instance in [counts, other] * 15))
        finally:
            await other.close()

    answers = run(project, work)

    assert answers.count(None) == 10


def test_clients_endpoints_and_rates_are_counted_apart(project):
    async def work(counts):
        one = parse_rates("1/day")
        return [
            await counts.hit(one, ENDPOINT, CLIENT),
            await counts.hit(one, ENDPOINT, "198.51.100.9"),
            await counts.hit(one, "session_status", CLIENT),
            await counts.hit(parse_rates("1/hour"), ENDPOINT, CLIENT),
            await counts.hit(one, ENDPOINT, CLIENT),
        ]

    answers = run(project, work)

    assert answers[:4] == [None, None, None, None]
    assert answers[4] is not None


def test_every_rate_of_an_endpoint_is_counted(project):
    run(project, hits(1, parse_rates("5/hour; 3/day")))

    assert sorted(doc["count"] for doc in stored(project).values()) == [1, 1]


def test_a_refused_client_is_answered_without_another_write(project):
    answers = run(project, hits(10))

    assert answers.count(None) == 3
    assert next(iter(stored(project).values()))["count"] == 4  # the first refusal is counted, the rest are not


def test_unreachable_firestore_is_counts_unavailable(monkeypatch):
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # the discard port: nothing listens

    with pytest.raises(CountsUnavailable):
        run(unique_project_id(), hits(1))


def test_no_credentials_is_counts_unavailable(monkeypatch, tmp_path):
    """A machine without Application Default Credentials: the service answers, counting in memory."""
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))

    with pytest.raises(CountsUnavailable):
        run("any-project", hits(1))


def test_window_ids_are_the_same_on_every_instance_and_differ_by_window():
    day = THREE_A_DAY[0]

    assert document_id(ENDPOINT, day, 86400.0, CLIENT) == document_id(ENDPOINT, day, 86400, CLIENT)
    assert (
        len(
            {
                document_id(ENDPOINT, day, 86400, CLIENT),
                document_id(ENDPOINT, day, 2 * 86400, CLIENT),
                document_id("session_status", day, 86400, CLIENT),
                document_id(ENDPOINT, parse_rates("4/day")[0], 86400, CLIENT),
                document_id(ENDPOINT, day, 86400, "198.51.100.9"),
            }
        )
        == 5
    )
