"""Both payment stores keep the promises of `PaymentStore`.

One contract suite runs against each store: SQLite on a temporary file, and
Firestore through the real client on Google's Firestore emulator (a fresh
project per test, so tests never see each other's data). What each store
wrote is read back with the raw SQLite or Firestore client, to check the
stored layout that operators and other tools rely on.

The stores are asynchronous; each test drives one on an event loop of its
own (`Sync`), as an instance would on its serving loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import random
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from google.cloud import firestore

from payments import events, firestore_store, sqlite_store, state
from payments.firestore_store import FirestoreStore
from payments.sqlite_store import SqliteStore
from payments.store import StoreUnavailable
from tests.support.stripe_objects import charge, checkout_session, dispute, event, session_after

REPO_ROOT = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000
COMPLETED = "checkout.session.completed"
SUCCEEDED = "checkout.session.async_payment_succeeded"
EXPIRED = "checkout.session.expired"

PAYMENT_FIELDS = {
    "session_id",
    "status",
    "payment_status",
    "outcome",
    "async_payment_failed",
    "amount_refunded",
    "refunded",
    "dispute",
    "last_dispute_event_id",
    "last_dispute_event_created",
    "amount_total",
    "currency",
    "customer_email",
    "metadata",
    "payment_intent",
    "livemode",
    "created",
    "updated_at",
    "paid_at",
    "last_event_id",
    "last_event_created",
}
EVENT_FIELDS = {"type", "session_id", "payment_intent", "created", "received_at", "expires_at"}


class Sync:
    """An async store driven from a test: each call runs on the one event loop this store lives on."""

    def __init__(self, store):
        self.store = store
        self.runner = asyncio.Runner()

    def __getattr__(self, name):
        attribute = getattr(self.store, name)
        if inspect.iscoroutinefunction(attribute):
            return lambda *args, **kwargs: self.runner.run(attribute(*args, **kwargs))
        return attribute

    def run(self, coroutine):
        return self.runner.run(coroutine)

    def record(self, e: dict) -> bool:
        """Record a verified event the way the webhook does."""
        return self.runner.run(self.store.record_event(events.change_from_event(e)))

    def read_session(self, session: dict) -> dict:
        """Record a session read from Stripe the way the status endpoint does."""
        return self.runner.run(self.store.record_session(events.change_from_session(session)))

    def close(self):
        self.runner.run(self.store.close())
        self.runner.close()


@dataclass
class Backend:
    """A store under test, and raw reads of what it wrote, bypassing the store."""

    name: str
    store: Sync
    raw_payment: Callable[[str], dict | None]
    raw_event: Callable[[str], dict | None]
    raw_intent: Callable[[str], dict | None]
    as_time: Callable[[object], datetime]


def sqlite_backend(path: Path) -> Backend:
    def rows(sql, key):
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, (key,)).fetchone()

    def raw_payment(session_id):
        row = rows("SELECT record FROM payments WHERE session_id = ?", session_id)
        return json.loads(row["record"]) if row else None

    def raw_event(event_id):
        row = rows(
            "SELECT type, session_id, payment_intent, created, received_at, expires_at FROM stripe_events"
            " WHERE event_id = ?",
            event_id,
        )
        return dict(row) if row else None

    def raw_intent(payment_intent):
        row = rows("SELECT record FROM payment_intents WHERE payment_intent = ?", payment_intent)
        return json.loads(row["record"]) if row else None

    return Backend("sqlite", Sync(SqliteStore(path)), raw_payment, raw_event, raw_intent, datetime.fromisoformat)


def firestore_backend(project: str) -> Backend:
    raw = firestore.Client(project=project)

    def document(collection, doc_id):
        snapshot = raw.collection(collection).document(doc_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    return Backend(
        "firestore",
        Sync(FirestoreStore("payments", "stripe_events", "payment_intents", project=project)),
        functools.partial(document, "payments"),
        functools.partial(document, "stripe_events"),
        functools.partial(document, "payment_intents"),
        lambda value: value,  # the client already returns datetimes
    )


@pytest.fixture(params=["sqlite", "firestore"])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        made = sqlite_backend(tmp_path / "data" / "payments.db")
    else:
        made = firestore_backend(request.getfixturevalue("firestore_project"))
    yield made
    made.store.close()


@pytest.fixture
def sqlite(tmp_path) -> Backend:
    made = sqlite_backend(tmp_path / "payments.db")
    yield made
    made.store.close()


def session_event(event_type, session, created=T0, id=None, **session_fields):
    return event(event_type, session_after(event_type, session, **session_fields), created=created, id=id)


def without_times(record):
    return {k: v for k, v in record.items() if k not in ("updated_at", "paid_at")}


def expected_record(evts):
    """What the state machine makes of `evts` applied in the order Stripe created them."""
    record = None
    for e in sorted(evts, key=lambda e: (e["created"], e["id"])):
        record = state.apply(record, events.change_from_event(e), now="now")
    return record


# The contract, for both stores.


def test_record_event_stores_the_payment_record_and_the_event(backend):
    session = checkout_session()
    e = session_event(COMPLETED, session, payment_status="unpaid", email="ada@example.com")

    assert backend.store.record(e) is True

    payment = backend.raw_payment(session["id"])
    assert set(payment) == PAYMENT_FIELDS
    assert without_times(payment) == {
        "session_id": session["id"],
        "status": "complete",
        "payment_status": "unpaid",
        "amount_total": 1900,
        "currency": "eur",
        "customer_email": "ada@example.com",
        "metadata": {"product": "hero-me", "order_ref": "ord_000001"},
        "payment_intent": e["data"]["object"]["payment_intent"],
        "livemode": False,
        "created": session["created"],
        "last_event_id": e["id"],
        "last_event_created": T0,
        "outcome": "processing",
        "async_payment_failed": False,
        "amount_refunded": 0,
        "refunded": False,
        "dispute": None,
        "last_dispute_event_id": None,
        "last_dispute_event_created": None,
    }
    assert payment["paid_at"] is None
    assert backend.as_time(payment["updated_at"]).tzinfo is not None

    stored_event = backend.raw_event(e["id"])
    assert set(stored_event) == EVENT_FIELDS
    assert (stored_event["type"], stored_event["session_id"], stored_event["created"]) == (COMPLETED, session["id"], T0)
    assert backend.as_time(stored_event["received_at"]).tzinfo is not None
    kept = backend.as_time(stored_event["expires_at"]) - backend.as_time(stored_event["received_at"])
    assert 29 < kept.total_seconds() / 86400 <= 30.01  # past Stripe's three days of retries, then TTL

    assert backend.store.get_payment(session["id"]) == payment


def test_first_paid_write_sets_paid_at_and_updated_at(backend):
    session = checkout_session()

    backend.store.record(session_event(COMPLETED, session))

    payment = backend.raw_payment(session["id"])
    assert backend.as_time(payment["paid_at"]) == backend.as_time(payment["updated_at"])


def test_paid_at_is_kept_when_later_events_arrive(backend):
    session = checkout_session()
    backend.store.record(session_event(COMPLETED, session, T0, payment_status="unpaid"))
    backend.store.record(session_event(SUCCEEDED, session, T0 + 60))
    paid_at = backend.raw_payment(session["id"])["paid_at"]

    backend.store.record(session_event(SUCCEEDED, session, T0 + 120))

    assert paid_at and backend.raw_payment(session["id"])["paid_at"] == paid_at


def test_duplicate_delivery_returns_false_and_changes_nothing(backend):
    session = checkout_session()
    e = session_event(COMPLETED, session)
    backend.store.record(e)
    payment, stored_event = backend.raw_payment(session["id"]), backend.raw_event(e["id"])

    assert backend.store.record(e) is False

    assert backend.raw_payment(session["id"]) == payment
    assert backend.raw_event(e["id"]) == stored_event


def test_out_of_order_deliveries_end_in_the_same_record(backend):
    flow = [
        (COMPLETED, T0, {"payment_status": "unpaid", "email": "first@example.com"}),
        (SUCCEEDED, T0 + 60, {"email": "second@example.com"}),
        (EXPIRED, T0 + 120, {}),
    ]
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        session = checkout_session()
        evts = [session_event(t, session, created, **fields) for t, created, fields in flow]

        assert all(backend.store.record(evts[i]) for i in order)

        stored = backend.store.get_payment(session["id"])
        assert without_times(stored) == without_times(expected_record(evts)), order
        assert (stored["status"], stored["payment_status"], stored["last_event_id"]) == (
            "complete",
            "paid",
            evts[2]["id"],
        )


def test_record_session_fills_a_record_and_is_idempotent(backend):
    session = checkout_session()
    read = session_after(COMPLETED, session, email="read@example.com")

    record = backend.store.read_session(read)

    assert record["status"] == "complete" and record["payment_status"] == "paid"
    assert record["customer_email"] == "read@example.com" and record["last_event_id"] is None
    assert without_times(backend.store.get_payment(session["id"])) == without_times(record)

    stored = backend.raw_payment(session["id"])
    again = backend.store.read_session(read)

    assert without_times(again) == without_times(record)
    assert backend.raw_payment(session["id"]) == stored  # not even updated_at was rewritten


def test_record_session_keeps_descriptions_from_events(backend):
    session = checkout_session()
    e = session_event(COMPLETED, session, payment_status="unpaid", email="event@example.com")
    backend.store.record(e)

    record = backend.store.read_session(session_after(SUCCEEDED, session, email="read@example.com"))

    assert (record["payment_status"], record["customer_email"], record["last_event_id"]) == (
        "paid",
        "event@example.com",
        e["id"],
    )
    assert without_times(backend.store.get_payment(session["id"])) == without_times(record)


def test_event_after_a_session_read_is_still_recorded(backend):
    session = checkout_session()
    backend.store.read_session(session_after(COMPLETED, session, email="read@example.com"))
    e = session_event(COMPLETED, session, email="event@example.com")

    assert backend.store.record(e) is True

    assert backend.store.get_payment(session["id"])["customer_email"] == "event@example.com"
    assert backend.raw_event(e["id"]) is not None


def test_a_refund_before_the_session_is_kept_by_payment_intent_and_joined_later(backend):
    session = checkout_session()
    completed = session_event(COMPLETED, session)
    intent = completed["data"]["object"]["payment_intent"]
    refund = event("charge.refunded", charge(intent, amount=1900, amount_refunded=1900), created=T0 + 60)

    assert backend.store.record(refund) is True
    assert backend.raw_payment(session["id"]) is None
    assert backend.raw_intent(intent)["refunded"] is True
    assert backend.raw_event(refund["id"])["session_id"] is None

    assert backend.store.record(completed) is True

    payment = backend.raw_payment(session["id"])
    assert (payment["outcome"], payment["amount_refunded"]) == ("refunded", 1900)
    assert backend.raw_intent(intent)["session_id"] == session["id"]


def test_a_dispute_after_payment_reaches_the_sessions_record(backend):
    session = checkout_session()
    completed = session_event(COMPLETED, session)
    intent = completed["data"]["object"]["payment_intent"]
    backend.store.record(completed)
    opened = event("charge.dispute.created", dispute(intent, status="needs_response"), created=T0 + 60)

    assert backend.store.record(opened) is True
    assert backend.store.record(opened) is False

    payment = backend.raw_payment(session["id"])
    assert payment["outcome"] == "paid"
    assert payment["dispute"]["status"] == "needs_response"
    assert backend.raw_event(opened["id"])["session_id"] == session["id"]


def test_get_payment_of_an_unknown_session_is_none(backend):
    assert backend.store.get_payment(checkout_session()["id"]) is None


def test_description_names_where_records_live(backend):
    assert ("SQLite file" if backend.name == "sqlite" else "Firestore") in backend.store.description


# SQLite: real locking, so racing deliveries are tested here.


def test_sqlite_creates_its_folder_and_reopens_the_same_data(tmp_path):
    path = tmp_path / "new" / "folder" / "payments.db"
    session = checkout_session()
    created = session_event(COMPLETED, session)
    asyncio.run(SqliteStore(path).record_event(events.change_from_event(created)))

    reopened = SqliteStore(path)

    assert asyncio.run(reopened.get_payment(session["id"]))["status"] == "complete"
    assert reopened.description == f"SQLite file {path}"


def test_sqlite_concurrent_duplicate_deliveries_record_each_event_once(sqlite):
    session = checkout_session()
    evts = [
        session_event(COMPLETED, session, T0, payment_status="unpaid"),
        session_event(SUCCEEDED, session, T0 + 60),
        session_event(COMPLETED, session, T0 + 1),
        session_event(EXPIRED, session, T0 + 120),
    ]
    deliveries = [e for e in evts for _ in range(8)]
    random.Random(7).shuffle(deliveries)

    async def deliver_all():  # each write runs on its own worker thread, all at once
        return await asyncio.gather(*(sqlite.store.store.record_event(events.change_from_event(e)) for e in deliveries))

    results = list(zip((e["id"] for e in deliveries), sqlite.store.run(deliver_all()), strict=False))

    stored = sorted(event_id for event_id, stored in results if stored)
    assert stored == sorted(e["id"] for e in evts)
    assert len(results) == len(deliveries)
    assert without_times(sqlite.store.get_payment(session["id"])) == without_times(expected_record(evts))


# Each process delivers every event, in its own random order: the two race
# for SQLite's write lock, and each finds evts the other already stored.
DELIVER_FROM_A_PROCESS = """
import asyncio, json, pathlib, random, sys, time
from payments.events import change_from_event
from payments.sqlite_store import SqliteStore

db, events_file, ready, me = sys.argv[1:]
store = SqliteStore(pathlib.Path(db))
evts = json.loads(pathlib.Path(events_file).read_text())
random.Random(me).shuffle(evts)
pathlib.Path(ready, me).touch()
while len(list(pathlib.Path(ready).iterdir())) < 2:  # start together with the other process
    time.sleep(0.001)
async def deliver_all():
    return [e["id"] for e in evts if await store.record_event(change_from_event(e))]
print(json.dumps(asyncio.run(deliver_all())))
"""


def test_sqlite_duplicate_deliveries_from_two_processes_record_each_event_once(tmp_path):
    db = tmp_path / "payments.db"
    sessions = [checkout_session() for _ in range(40)]
    evts = [session_event(t, s, T0 + n) for s in sessions for n, t in enumerate((COMPLETED, SUCCEEDED, EXPIRED))]
    (tmp_path / "evts.json").write_text(json.dumps(evts))
    (tmp_path / "ready").mkdir()

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", DELIVER_FROM_A_PROCESS, db, tmp_path / "evts.json", tmp_path / "ready", name],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outputs = [process.communicate(timeout=30)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0]
    stored = [event_id for output in outputs for event_id in json.loads(output)]
    assert sorted(stored) == sorted(e["id"] for e in evts)
    store = Sync(SqliteStore(db))
    for s in sessions:
        mine = [e for e in evts if e["data"]["object"]["id"] == s["id"]]
        assert without_times(store.get_payment(s["id"])) == without_times(expected_record(mine))
    store.close()


def test_sqlite_write_that_cannot_get_the_lock_is_unavailable_and_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "payments.db"
    store = Sync(SqliteStore(path))
    e = session_event(COMPLETED, checkout_session())
    other_writer = sqlite3.connect(path, isolation_level=None)
    other_writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable) as raised:
            store.record(e)
    finally:
        other_writer.execute("ROLLBACK")
        other_writer.close()

    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    assert store.record(e) is True  # Stripe's retry then stores it once
    store.close()


# Firestore: a store that cannot reach Firestore fails fast and stores nothing.


@pytest.fixture(params=["refused", "silent"])
def unreachable_host(request):
    """An address where no Firestore answers.

    "refused": nothing listens, so connecting fails at once. "silent": a
    socket accepts connections but never replies, like a network black hole,
    so only deadlines end the calls.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if request.param == "silent":
        listener.listen(16)
    else:
        listener.close()
    yield f"127.0.0.1:{port}"
    listener.close()


def test_firestore_unreachable_raises_store_unavailable_quickly_and_stores_nothing(
    firestore_emulator, firestore_project, unreachable_host, monkeypatch
):
    reachable = firestore_backend(firestore_project)
    session = checkout_session()
    e = session_event(COMPLETED, session)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", unreachable_host)
    unreachable = Sync(FirestoreStore("payments", "stripe_events", "payment_intents", project=firestore_project))

    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        unreachable.record(e)
    elapsed = time.monotonic() - started

    assert elapsed < firestore_store.OPERATION_TIMEOUT_SECONDS + 1
    assert reachable.raw_payment(session["id"]) is None
    assert reachable.raw_event(e["id"]) is None

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator)
    assert reachable.store.record(e) is True
    assert reachable.store.record(e) is False
    assert reachable.raw_payment(session["id"])["last_event_id"] == e["id"]
    reachable.store.close()


def test_firestore_operation_past_its_deadline_is_unavailable_at_once(monkeypatch):
    monkeypatch.setattr(firestore_store, "OPERATION_TIMEOUT_SECONDS", 0.05)
    store = FirestoreStore("payments", "stripe_events", project="never-used")

    async def slow_operation():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store._bounded(asyncio.sleep(5))
        return time.monotonic() - started

    assert asyncio.run(slow_operation()) < 1


# -- which store an instance opens ---------------------------------------------------------


def test_the_google_cloud_store_is_opened_with_the_collections_project_and_emulator_set():
    from common import settings
    from payments import stores

    chosen = settings.from_env(
        {
            "PAYMENTS_STORE": "firestore",
            "PAYMENTS_COLLECTION": "p",
            "EVENTS_COLLECTION": "e",
            "PAYMENT_INTENTS_COLLECTION": "i",
            "GOOGLE_CLOUD_PROJECT": "hero-me",
            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080",
        }
    )

    store = stores.open_store(chosen)

    assert store.description == "Firestore collections p, i and e on the emulator at 127.0.0.1:8080"
    assert store.project == "hero-me"


def test_the_embedded_store_is_opened_at_the_path_set(tmp_path):
    from common import settings
    from payments import stores

    store = stores.open_store(settings.from_env({"PAYMENTS_STORE": f"sqlite:///{tmp_path / 'chosen.db'}"}))

    assert isinstance(store, SqliteStore)
    assert str(tmp_path / "chosen.db") in store.description
