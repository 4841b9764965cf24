"""The promises every payment store keeps, and the error it raises when it cannot.

Two stores keep them: Firestore on Google Cloud (`payments.firestore_store`)
and an embedded SQLite file for running without Google Cloud
(`payments.sqlite_store`); `payments.stores.open_store` picks one. Both apply
the pure state machine in `payments.state`, so a record comes out the same
whichever store holds it.
"""

from __future__ import annotations

from typing import Protocol

from payments.state import Change, SessionChange


class StoreUnavailable(Exception):
    """The store could not be reached or refused the write: nothing was stored."""


class PaymentStore(Protocol):
    """Where payment records live.

    - `record_event` stores a verified event, as the change read from it
      (see `payments.events`), and applies that change to the records it
      touches, in one atomic step,
      exactly once per event id: a repeated delivery, even a concurrent one,
      changes nothing and returns False. It raises `StoreUnavailable` (within
      ~10 s) when nothing could be stored, so the webhook never acknowledges
      an event it lost.
    - `record_session` applies a Checkout Session read from Stripe, the
      same idempotent way, and returns the resulting record.
    - `get_payment` returns the record for a session id, or None.
    """

    description: str

    async def record_event(self, change: Change) -> bool: ...

    async def record_session(self, change: SessionChange) -> dict: ...

    async def get_payment(self, session_id: str) -> dict | None: ...

    async def close(self) -> None: ...
