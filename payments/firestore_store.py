"""Payment records in Firestore, the store on Google Cloud.

Three collections (names from settings, defaults shown):

    payments/{session_id}            the payment record (see `payments.state`)
    payment_intents/{payment_intent} refunds and disputes of a payment, and its session_id
    stripe_events/{event_id}         type, session_id, payment_intent, created, received_at, expires_at

`record_event` reads the event document and the records the event touches,
and writes them all in one transaction, so an event is applied exactly once
even when Stripe delivers it twice at the same moment. Firestore locks the documents a
transaction reads; a transaction that loses a conflict is aborted and retried
by `async_transactional`, and the retry finds the event already stored.

Deliveries for one session are also taken one at a time inside an instance
before their transaction starts. Stripe sends an event again when an answer
is slow, and several events of one session arrive together; if each opened a
transaction on the same documents, they would only wait on each other's
locks. The state machine is idempotent, so applying them in turn loses
nothing.

Failing fast is part of not losing events: the webhook must answer within
Stripe's timeout, and an error answer makes Stripe retry later. Every
operation is bounded by OPERATION_TIMEOUT_SECONDS, after which the caller gets
`StoreUnavailable` while the abandoned operation finishes (or rolls back) in
the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from datetime import datetime, timedelta, timezone

from google.api_core import exceptions as api_exceptions
from google.api_core import retry_async
from google.auth import exceptions as auth_exceptions
from google.cloud import firestore

from payments import state
from payments.store import StoreUnavailable

RPC_TIMEOUT_SECONDS = 4.0
OPERATION_TIMEOUT_SECONDS = 9.0

# Event documents expire (by a Firestore TTL policy on `expires_at`) well
# after Stripe's three days of retries: a redelivery is still a duplicate.
EVENT_RETENTION = timedelta(days=30)

# Transient errors are retried, as the client library would, but only for
# RPC_TIMEOUT_SECONDS instead of its 60 to 300 seconds.
READ_RETRY = retry_async.AsyncRetry(
    predicate=retry_async.if_transient_error, initial=0.1, maximum=1.0, multiplier=2.0, timeout=RPC_TIMEOUT_SECONDS
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

    def __init__(self, payments_collection: str, events_collection: str,
                 intents_collection: str = "payment_intents", project: str | None = None,
                 emulator_host: str | None = None):
        self.payments_collection = payments_collection
        self.events_collection = events_collection
        self.intents_collection = intents_collection
        self.project = project
        self.description = f"Firestore collections {payments_collection} and {events_collection}" + (
            f" on the emulator at {emulator_host}" if emulator_host else ""
        )
        self._client: firestore.AsyncClient | None = None
        self._turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._background: set[asyncio.Task] = set()

    async def record_event(self, event: dict, change: state.Change) -> bool:
        async def run() -> bool:
            async with self._locks(change):
                try:
                    return await _record_event(self._get_client().transaction(), self, event, change)
                except api_exceptions.AlreadyExists:
                    # Another instance committed this event first; ours committed
                    # nothing (the transaction is atomic), so it is a duplicate.
                    return False

        return await self._bounded(run())

    async def record_session(self, change: state.SessionChange) -> dict:
        async def run() -> dict:
            async with self._locks(change):
                transaction = self._get_client().transaction()
                record = await _record_session(transaction, self, change)
                # What the server stored for SERVER_TIMESTAMP is the commit time.
                return {k: transaction.commit_time if v is firestore.SERVER_TIMESTAMP else v for k, v in record.items()}

        return await self._bounded(run())

    async def get_payment(self, session_id: str) -> dict | None:
        async def run() -> dict | None:
            ref = self._get_client().collection(self.payments_collection).document(session_id)
            snapshot = await ref.get(retry=READ_RETRY, timeout=RPC_TIMEOUT_SECONDS)
            return snapshot.to_dict() if snapshot.exists else None

        return await self._bounded(run())

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            # AsyncClient has no public way to close its gRPC channel (google-cloud-firestore 2.34);
            # the API client it wraps closes it through its transport.
            await client._firestore_api.transport.close()

    def _get_client(self) -> firestore.AsyncClient:
        """One client per instance, created on first use (in the serving event loop): it holds the gRPC channel.

        Credentials and project come from the environment (Application Default
        Credentials on Google Cloud; the client talks to an emulator by
        itself when FIRESTORE_EMULATOR_HOST is set).
        """
        if self._client is None:
            self._client = firestore.AsyncClient(project=self.project)
        return self._client

    async def read(self, transaction, *refs) -> list:
        """Read documents in the transaction in one bounded RPC, returned in the order asked for.

        Through the client's get_all, given the transaction: AsyncTransaction.get_all
        awaits that async generator instead of returning it, which fails
        (google-cloud-firestore 2.34).
        """
        found = {}
        reads = self._get_client().get_all(list(refs), transaction=transaction, retry=READ_RETRY,
                                           timeout=RPC_TIMEOUT_SECONDS)
        async for snapshot in reads:
            found[snapshot.reference.path] = snapshot
        return [found[ref.path] for ref in refs]

    def payment(self, session_id: str):
        return self._get_client().collection(self.payments_collection).document(session_id)

    def intent(self, payment_intent: str):
        return self._get_client().collection(self.intents_collection).document(payment_intent)

    def event(self, event_id: str):
        return self._get_client().collection(self.events_collection).document(event_id)

    @contextlib.asynccontextmanager
    async def _locks(self, change: state.Change):
        """Take this instance's turn on the session and the PaymentIntent the change touches, in that order."""
        keys = [change.payment_intent] if isinstance(change, state.ChargeChange) else [change.session_id]
        if isinstance(change, state.SessionChange) and change.payment_intent:
            keys.append(change.payment_intent)
        async with contextlib.AsyncExitStack() as stack:
            for key in keys:
                lock = self._turns.get(key)
                if lock is None:
                    lock = self._turns[key] = asyncio.Lock()
                await stack.enter_async_context(lock)
            yield

    async def _bounded(self, operation):
        """Run `operation`, waiting at most OPERATION_TIMEOUT_SECONDS for it.

        Past the bound the caller gets StoreUnavailable at once, and the
        operation is cancelled, rolling back in the background. If its commit
        was already on its way it may still land after we answered 503: that
        is fine, Stripe's retry of the delivery then finds the event stored
        and is answered as a duplicate.
        """
        task = asyncio.ensure_future(operation)
        done, _ = await asyncio.wait({task}, timeout=OPERATION_TIMEOUT_SECONDS)
        if not done:
            task.cancel()
            self._background.add(task)
            task.add_done_callback(_forget(self._background))
            raise StoreUnavailable("Firestore did not answer in time")
        try:
            return task.result()
        except Exception as error:
            if _is_unavailable(error):
                raise StoreUnavailable(f"Firestore failed ({error.__class__.__name__})") from error
            raise


@firestore.async_transactional
async def _record_event(transaction, store: FirestoreStore, event: dict, change: state.Change) -> bool:
    event_ref = store.event(change.event_id)
    if isinstance(change, state.ChargeChange):
        stored_event, intent = await store.read(transaction, event_ref, store.intent(change.payment_intent))
        session_id = intent.get("session_id") if intent.exists else None
        payment = (await store.read(transaction, store.payment(session_id)))[0] if session_id else None
    else:
        refs = [event_ref, store.payment(change.session_id)]
        if change.payment_intent:
            refs.append(store.intent(change.payment_intent))
        stored_event, payment, *linked = await store.read(transaction, *refs)
        known = payment.get("payment_intent") if payment.exists else None
        if not linked and known:  # an event without the PaymentIntent, for a session that has one
            linked = await store.read(transaction, store.intent(known))
        intent = linked[0] if linked else None
    if stored_event.exists:
        return False

    new_payment, new_intent = state.record_change(
        _data(payment), _data(intent), change, firestore.SERVER_TIMESTAMP
    )
    if new_payment is not None:
        transaction.set(store.payment(new_payment["session_id"]), new_payment)
    if new_intent is not None:
        transaction.set(store.intent(new_intent["payment_intent"]), new_intent)
    transaction.create(event_ref, {
        "type": change.event_type,
        "session_id": new_payment["session_id"] if new_payment else None,
        "payment_intent": new_intent["payment_intent"] if new_intent else getattr(change, "payment_intent", None),
        "created": change.created,
        "received_at": firestore.SERVER_TIMESTAMP,
        "expires_at": datetime.now(timezone.utc) + EVENT_RETENTION,
    })
    return True


@firestore.async_transactional
async def _record_session(transaction, store: FirestoreStore, change: state.SessionChange) -> dict:
    refs = [store.payment(change.session_id)]
    if change.payment_intent:
        refs.append(store.intent(change.payment_intent))
    payment, *linked = await store.read(transaction, *refs)
    before = _data(payment)
    after, new_intent = state.record_change(before, _data(linked[0]) if linked else None, change,
                                            firestore.SERVER_TIMESTAMP)
    if state.same(before, after):
        return before
    transaction.set(store.payment(change.session_id), after)
    if new_intent is not None:
        transaction.set(store.intent(new_intent["payment_intent"]), new_intent)
    return after


def _data(snapshot) -> dict | None:
    return snapshot.to_dict() if snapshot is not None and snapshot.exists else None


def _forget(tasks: set):
    def discard(task: asyncio.Task) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved

    return discard


def _is_unavailable(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is Firestore failing.

    A transaction that runs out of attempts raises a ValueError from the last
    Aborted, and a failed rollback chains the real failure as its context,
    so the whole chain is searched.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UNAVAILABLE_ERRORS):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False
