"""Payment records in Firestore, the store on Google Cloud.

Two collections (names from settings, defaults shown):

    payments/{session_id}       the payment record (see `payments.state`)
    stripe_events/{event_id}    type, session_id, created, received_at

`record_event` reads the event document and the payment document and writes
both in one transaction, so an event is applied exactly once even when Stripe
delivers it twice at the same moment: Firestore aborts one of two
transactions that read the same document, and `firestore.transactional`
retries it, and the retry finds the event already stored.

Failing fast is part of not losing events. The webhook must answer within
Stripe's timeout, and an error answer makes Stripe retry later, so when
Firestore cannot be reached the store raises `StoreUnavailable` quickly
instead of letting the client retry for a minute. Two bounds do that:

- every RPC is bounded to RPC_TIMEOUT_SECONDS, retries included: reads
  through their `retry`/`timeout` arguments, and BeginTransaction, Commit and
  Rollback (which `Transaction` sends without those arguments) through the
  client's defaults for them, see `_bound_transaction_rpcs`;
- a transaction chains several RPCs and may be retried after contention, so
  the whole operation also runs on a worker thread that the caller waits for
  at most OPERATION_TIMEOUT_SECONDS. A write that still lands after that is
  harmless: Stripe's retry of the delivery then finds the event stored.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.auth import exceptions as auth_exceptions
from google.cloud import firestore

from payments import state
from payments.store import StoreUnavailable

RPC_TIMEOUT_SECONDS = 4.0
OPERATION_TIMEOUT_SECONDS = 9.0

# Transient errors are retried, as the client library would, but only for
# RPC_TIMEOUT_SECONDS instead of its 60 to 300 seconds.
READ_RETRY = api_retry.Retry(
    predicate=api_retry.if_transient_error,
    initial=0.1,
    maximum=1.0,
    multiplier=2.0,
    timeout=RPC_TIMEOUT_SECONDS,
)

# Errors that mean "Firestore did not store it": answer 503 so Stripe retries.
UNAVAILABLE_ERRORS = (
    api_exceptions.GoogleAPICallError,  # any gRPC status, including Aborted after the last attempt
    api_exceptions.RetryError,
    auth_exceptions.TransportError,  # no access token: the metadata server is unreachable
    auth_exceptions.RefreshError,
    TimeoutError,
)


class FirestoreStore:
    """A `PaymentStore` in two Firestore collections."""

    def __init__(self, payments_collection: str, events_collection: str):
        self.payments_collection = payments_collection
        self.events_collection = events_collection
        where = os.environ.get("FIRESTORE_EMULATOR_HOST")
        self.description = f"Firestore collections {payments_collection} and {events_collection}" + (
            f" on the emulator at {where}" if where else ""
        )
        self._client: firestore.Client | None = None
        self._client_lock = threading.Lock()

    def record_event(self, event: dict) -> bool:
        change = state.change_from_event(event)

        def run() -> bool:
            client = self._get_client()
            try:
                return _record_event(
                    client.transaction(),
                    client.collection(self.payments_collection).document(change.session_id),
                    client.collection(self.events_collection).document(change.event_id),
                    change,
                )
            except api_exceptions.AlreadyExists:
                # A concurrent delivery of the same event committed first; ours
                # committed nothing (the transaction is atomic), so it is a duplicate.
                return False

        return _call_with_deadline(run)

    def record_session(self, session: dict) -> dict:
        change = state.change_from_session(session)

        def run() -> dict:
            client = self._get_client()
            transaction = client.transaction()
            record = _record_session(
                transaction, client.collection(self.payments_collection).document(change.session_id), change
            )
            # What the server stored for SERVER_TIMESTAMP is the commit time.
            return {k: transaction.commit_time if v is firestore.SERVER_TIMESTAMP else v for k, v in record.items()}

        return _call_with_deadline(run)

    def get_payment(self, session_id: str) -> dict | None:
        def run() -> dict | None:
            ref = self._get_client().collection(self.payments_collection).document(session_id)
            snapshot = ref.get(retry=READ_RETRY, timeout=RPC_TIMEOUT_SECONDS)
            return snapshot.to_dict() if snapshot.exists else None

        return _call_with_deadline(run)

    def _get_client(self) -> firestore.Client:
        """One client per instance, created on first use: it holds the gRPC channel.

        The project comes from the environment (Application Default
        Credentials on Google Cloud; GOOGLE_CLOUD_PROJECT, or a fixed default,
        when FIRESTORE_EMULATOR_HOST points the client at an emulator).
        """
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    client = firestore.Client()
                    _bound_transaction_rpcs(client)
                    self._client = client
        return self._client


@firestore.transactional
def _record_event(transaction, payment_ref, event_ref, change: state.SessionChange) -> bool:
    stored_event, payment = _get_all(transaction, event_ref, payment_ref)
    if stored_event.exists:
        return False
    before = payment.to_dict() if payment.exists else None
    transaction.set(payment_ref, state.apply(before, change, firestore.SERVER_TIMESTAMP))
    transaction.create(
        event_ref,
        {
            "type": change.event_type,
            "session_id": change.session_id,
            "created": change.created,
            "received_at": firestore.SERVER_TIMESTAMP,
        },
    )
    return True


@firestore.transactional
def _record_session(transaction, payment_ref, change: state.SessionChange) -> dict:
    (payment,) = _get_all(transaction, payment_ref)
    before = payment.to_dict() if payment.exists else None
    after = state.apply(before, change, firestore.SERVER_TIMESTAMP)
    if state.same(before, after):
        return before
    transaction.set(payment_ref, after)
    return after


def _get_all(transaction, *refs) -> list:
    """Read documents in one bounded RPC, returned in the order asked for."""
    found = {
        snapshot.reference.path: snapshot
        for snapshot in transaction.get_all(list(refs), retry=READ_RETRY, timeout=RPC_TIMEOUT_SECONDS)
    }
    return [found[ref.path] for ref in refs]


def _bound_transaction_rpcs(client: firestore.Client) -> None:
    """Bound BeginTransaction, Commit and Rollback to RPC_TIMEOUT_SECONDS.

    `Transaction` calls them without `retry`/`timeout` arguments, so they use
    the defaults of the generated client: retry UNAVAILABLE for up to 60 s.
    These defaults live on the client's transport; keep their retry
    predicates (Commit deliberately retries fewer errors) and shorten only
    how long they may take. The test of an unreachable Firestore fails if a
    library upgrade makes this stop working.
    """
    transport = client._firestore_api.transport
    for rpc in (transport.begin_transaction, transport.commit, transport.rollback):
        method = transport._wrapped_methods[rpc]
        method._retry = method._retry.with_timeout(RPC_TIMEOUT_SECONDS)
        method._timeout = RPC_TIMEOUT_SECONDS


def _call_with_deadline(operation):
    """Run `operation` on a worker and wait at most OPERATION_TIMEOUT_SECONDS.

    Errors that mean Firestore did not take the write become
    `StoreUnavailable`; anything else (a bug) is raised as it is.
    """
    future = concurrent.futures.Future()

    def run():
        try:
            future.set_result(operation())
        except Exception as error:
            future.set_exception(error)

    threading.Thread(target=run, name="firestore-operation", daemon=True).start()
    try:
        return future.result(timeout=OPERATION_TIMEOUT_SECONDS)
    except Exception as error:
        if _is_unavailable(error):
            raise StoreUnavailable() from error
        raise


def _is_unavailable(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is Firestore failing.

    A failed transaction rolls back, and when the rollback itself cannot run
    (the transaction never began) it raises a ValueError whose context is
    the real failure, so the whole chain is searched.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UNAVAILABLE_ERRORS):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False
