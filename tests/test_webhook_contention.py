"""POST /webhook under contention: Stripe delivering one session's events at the same moment.

Stripe retries, and may send a session's completed and async_payment_succeeded
events close together, so several deliveries for one session can arrive at
once, on different connections, to one instance or to several. Each must
still be answered 2xx within Stripe's patience (10 s here), store each event
once and leave the record paid. Both stores; on Firestore the emulator's
locking is Google's own.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import signed_headers
from tests.support import stripe_objects

ANSWER_WITHIN_SECONDS = 10


@pytest.fixture(params=["one instance", "an instance each"])
def instances(request, client, new_client):
    """Clients for N deliveries: all to one instance, or each to an instance of its own (as Cloud Run scales)."""
    if request.param == "one instance":
        return lambda count: [client] * count
    return lambda count: [client] + [new_client() for _ in range(count - 1)]


def post_at_once(clients, events: list[dict]) -> list[tuple[int, dict, float]]:
    """POST each event at the same moment, each on its own connection, as Stripe's connections would.

    Returns (status, body, seconds to answer) per delivery.
    """
    start = threading.Barrier(len(events))

    def post(test_client, event):
        payload = json.dumps(event)
        headers = signed_headers(payload)
        start.wait()
        started = time.monotonic()
        response = test_client.post("/webhook", content=payload, headers=headers)
        return response.status_code, response.json(), time.monotonic() - started

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(post, clients, events))


def assert_all_answered_2xx_in_time(answers):
    assert [(status, body) for status, body, _ in answers if not 200 <= status < 300] == []
    assert max(seconds for _, _, seconds in answers) < ANSWER_WITHIN_SECONDS


def session_paid_later() -> tuple[dict, dict, dict]:
    """A session paid by a delayed method: completed unpaid, then async_payment_succeeded."""
    session = stripe_objects.checkout_session()
    completed = stripe_objects.event(
        "checkout.session.completed",
        stripe_objects.session_after("checkout.session.completed", session, payment_status="unpaid"),
        created=session["created"] + 1,
    )
    succeeded = stripe_objects.event(
        "checkout.session.async_payment_succeeded",
        stripe_objects.session_after("checkout.session.async_payment_succeeded", session),
        created=session["created"] + 2,
    )
    return session, completed, succeeded


def test_eight_concurrent_deliveries_of_one_event_are_answered_in_time_and_stored_once(instances, payments):
    session = stripe_objects.checkout_session()
    completed = stripe_objects.event(
        "checkout.session.completed", stripe_objects.session_after("checkout.session.completed", session)
    )

    answers = post_at_once(instances(8), [completed] * 8)

    assert_all_answered_2xx_in_time(answers)
    assert sorted(body["duplicate"] for _, body, _ in answers) == [False] + [True] * 7
    assert payments.event_ids() == [completed["id"]]
    assert payments.record(session["id"])["payment_status"] == "paid"


def test_six_concurrent_deliveries_of_two_events_for_one_session_are_answered_in_time_and_applied(instances, payments):
    session, completed, succeeded = session_paid_later()

    answers = post_at_once(instances(6), [completed, succeeded] * 3)

    assert_all_answered_2xx_in_time(answers)
    assert sorted(payments.event_ids()) == sorted([completed["id"], succeeded["id"]])
    record = payments.record(session["id"])
    assert (record["status"], record["payment_status"]) == ("complete", "paid")
    assert record["last_event_id"] == succeeded["id"]
