"""Where payment records live, chosen once per instance.

Two stores keep the same promises (see `PaymentStore`): Firestore on Google
Cloud, and an embedded SQLite file for running without Google Cloud.
`PAYMENTS_STORE=firestore` or `PAYMENTS_STORE=sqlite:///path.db` chooses;
otherwise Firestore when running on Google Cloud (`K_SERVICE` is set) or
against an emulator (`FIRESTORE_EMULATOR_HOST`), else a SQLite file in the
git-ignored `.local/` folder. The Firestore client is imported only when the
Firestore store is chosen: it costs ~0.4 s of cold start.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from common import logs
from common.errors import HttpError, SettingError
from common.settings import Settings

DEFAULT_SQLITE_PATH = Path(__file__).resolve().parent.parent / ".local" / "payments.db"


class StoreUnavailable(HttpError):
    """The store could not be reached or refused the write: nothing was stored."""

    def __init__(self, detail: str = "Payment store is unavailable; try again shortly."):
        super().__init__(503, detail, {"Retry-After": "5"})


class PaymentStore(Protocol):
    """The promises both stores keep.

    - `record_event` stores a verified event and applies it to the session's
      payment record in one atomic step, exactly once per event id: a
      repeated delivery, even a concurrent one, changes nothing and returns
      False. It raises `StoreUnavailable` (within ~10 s) when nothing could
      be stored, so the webhook never acknowledges an event it lost.
    - `record_session` applies a Checkout Session read from Stripe, the
      same idempotent way, and returns the resulting record.
    - `get_payment` returns the record for a session id, or None.
    """

    description: str

    def record_event(self, event: dict) -> bool: ...

    def record_session(self, session: dict) -> dict: ...

    def get_payment(self, session_id: str) -> dict | None: ...


_store: PaymentStore | None = None
_lock = threading.Lock()


def get_store(settings: Settings) -> PaymentStore:
    """The instance's store, opened on first use and shared by all requests."""
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = open_store(settings)
                logs.write("INFO", f"Payment records are stored in {_store.description}.")
    return _store


def open_store(settings: Settings) -> PaymentStore:
    choice = settings.payments_store or _default_choice(settings.env)
    if choice == "firestore":
        from payments.firestore_store import FirestoreStore

        return FirestoreStore(settings.payments_collection, settings.events_collection)
    if choice.startswith("sqlite:///"):
        from payments.sqlite_store import SqliteStore

        return SqliteStore(Path(choice[len("sqlite:///"):]))
    raise SettingError("PAYMENTS_STORE", "must be firestore or sqlite:///path/to/file.db")


def _default_choice(env: dict) -> str:
    if env.get("K_SERVICE") or env.get("FIRESTORE_EMULATOR_HOST"):
        return "firestore"
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def reset_store() -> None:
    """Forget the open store (tests switch stores between cases)."""
    global _store
    with _lock:
        _store = None
