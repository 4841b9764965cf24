"""Which payment store an instance uses, opened from its settings.

The Firestore client is imported only when the Firestore store is chosen:
it costs ~0.4 s of cold start.
"""

from __future__ import annotations

from common.settings import Settings
from payments.store import PaymentStore


def open_store(settings: Settings) -> PaymentStore:
    choice = settings.payments_store
    if choice.kind == "firestore":
        from payments.firestore_store import FirestoreStore

        return FirestoreStore(
            settings.payments_collection,
            settings.events_collection,
            settings.payment_intents_collection,
            project=settings.google_cloud_project,
            emulator_host=settings.firestore_emulator_host,
        )
    from payments.sqlite_store import SqliteStore

    assert choice.path is not None
    return SqliteStore(choice.path)
