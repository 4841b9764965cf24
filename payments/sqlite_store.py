"""Payment records in an embedded SQLite file, for running without Google Cloud.

It keeps the same promises as the Firestore store (see `PaymentStore`):
every write is one `BEGIN IMMEDIATE` transaction, which takes SQLite's write
lock before reading, so two deliveries of the same event, from two threads or
two processes, cannot both see it as new. WAL mode lets readers carry on
while a write is in progress, and `busy_timeout` makes a writer wait for the
lock instead of failing at once.

The service runs on an event loop, so each write runs on a worker thread
(`asyncio.to_thread`) and the loop keeps serving while it waits for the
write lock; reads, which never wait in WAL mode, run on the loop itself. Each
thread gets its own connection (sqlite3 connections must not be shared
between threads without a lock of their own); they all open the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from payments import state
from payments.store import StoreUnavailable

# As in Firestore, event rows are kept well past Stripe's three days of retries.
EVENT_RETENTION = timedelta(days=30)

# How long a write waits for another writer before the store reports itself
# unavailable; well inside the ~10 s a webhook delivery may take.
BUSY_TIMEOUT_SECONDS = 5.0

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS payments (
        session_id TEXT PRIMARY KEY,
        record     TEXT NOT NULL  -- the payment record as a JSON object
    )""",
    """CREATE TABLE IF NOT EXISTS payment_intents (
        payment_intent TEXT PRIMARY KEY,
        record         TEXT NOT NULL  -- refunds, disputes and the session_id, as a JSON object
    )""",
    """CREATE TABLE IF NOT EXISTS stripe_events (
        event_id       TEXT PRIMARY KEY,
        type           TEXT NOT NULL,
        session_id     TEXT,              -- null for a charge event whose session is not known yet
        payment_intent TEXT,
        created        INTEGER NOT NULL,  -- Stripe's event time, Unix seconds
        received_at    TEXT NOT NULL,     -- when we stored it, ISO-8601 UTC
        expires_at     TEXT NOT NULL      -- when it may be deleted, ISO-8601 UTC
    )""",
)


class SqliteStore:
    """A `PaymentStore` in one SQLite file, shared safely by threads and processes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.description = f"SQLite file {self.path}"
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._use_wal(self._connection())
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable() from error
        with self._transaction() as db:
            for statement in SCHEMA:
                db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(stripe_events)")}
            for column in ("payment_intent", "expires_at"):  # a file written by an earlier version
                if column not in columns:
                    db.execute(f"ALTER TABLE stripe_events ADD COLUMN {column} TEXT")

    async def record_event(self, change: state.Change) -> bool:
        return await asyncio.to_thread(self._record_event, change)

    async def record_session(self, change: state.SessionChange) -> dict:
        return await asyncio.to_thread(self._record_session, change)

    async def get_payment(self, session_id: str) -> dict | None:
        # Read on the event loop itself: in WAL mode a read never waits for a writer, and the
        # hop to a worker thread cost more CPU than the read (~30% of a status request's).
        return self._get_payment(session_id)

    async def close(self) -> None:
        pass  # each thread's connection closes with its thread

    def _record_event(self, change: state.Change) -> bool:
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM stripe_events WHERE event_id = ?", (change.event_id,)).fetchone():
                return False
            if isinstance(change, state.ChargeChange):
                intent = self._read(db, "payment_intents", change.payment_intent)
                session_id = intent.get("session_id") if intent else None
                payment = self._read(db, "payments", session_id) if session_id else None
            else:
                payment = self._read(db, "payments", change.session_id)
                known = change.payment_intent or (payment or {}).get("payment_intent")
                intent = self._read(db, "payment_intents", known) if known else None
            now = _now()
            new_payment, new_intent = state.record_change(payment, intent, change, _iso(now))
            self._write(db, new_payment, new_intent)
            db.execute(
                "INSERT INTO stripe_events (event_id, type, session_id, payment_intent, created, received_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    change.event_id,
                    change.event_type,
                    new_payment["session_id"] if new_payment else None,
                    new_intent["payment_intent"] if new_intent else getattr(change, "payment_intent", None),
                    change.created,
                    _iso(now),
                    _iso(now + EVENT_RETENTION),
                ),
            )
        return True

    def _record_session(self, change: state.SessionChange) -> dict:
        with self._transaction() as db:
            before = self._read(db, "payments", change.session_id)
            intent = self._read(db, "payment_intents", change.payment_intent) if change.payment_intent else None
            after, new_intent = state.record_change(before, intent, change, _iso(_now()))
            assert after is not None  # a session change always gives a payment record
            if before is not None and state.same(before, after):
                return before
            self._write(db, after, new_intent)
        return after

    def _get_payment(self, session_id: str) -> dict | None:
        try:
            return self._read(self._connection(), "payments", session_id)
        except sqlite3.Error as error:
            raise StoreUnavailable() from error

    @staticmethod
    def _use_wal(db: sqlite3.Connection) -> None:
        """Switch the file to WAL mode (persistent: stored in the file).

        Switching takes an exclusive lock and, unlike reads and writes, does
        not wait for one: two processes opening a new file at once can find
        it locked, so it is tried again until the busy timeout has passed.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use.

        isolation_level=None turns off the sqlite3 module's implicit
        transactions, so `_transaction` alone decides where they begin.
        """
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction; any SQLite failure becomes StoreUnavailable.

        Nothing is committed unless the body finishes, so a failed write
        stores nothing and Stripe's retry finds the event still new.
        """
        try:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise StoreUnavailable() from error

    @staticmethod
    def _read(db: sqlite3.Connection, table: str, key: str) -> dict | None:
        column = "session_id" if table == "payments" else "payment_intent"
        row = db.execute(f"SELECT record FROM {table} WHERE {column} = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    @staticmethod
    def _write(db: sqlite3.Connection, payment: dict | None, intent: dict | None) -> None:
        if payment is not None:
            db.execute(
                "INSERT INTO payments (session_id, record) VALUES (?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET record = excluded.record",
                (payment["session_id"], json.dumps(payment, sort_keys=True)),
            )
        if intent is not None:
            db.execute(
                "INSERT INTO payment_intents (payment_intent, record) VALUES (?, ?)"
                " ON CONFLICT (payment_intent) DO UPDATE SET record = excluded.record",
                (intent["payment_intent"], json.dumps(intent, sort_keys=True)),
            )


def _now() -> datetime:
    """The time of a write (what Firestore's server timestamp is there)."""
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")
