"""Payment records in Firestore, the store on Google Cloud.

Three collections (names from settings, defaults shown):

    payments/{session_id}            the payment record (see `payments.state`)
    payment_intents/{payment_intent} refunds and disputes of a payment, and its session_id
    stripe_events/{event_id}         type, session_id, payment_intent, created, received_at, expires_at

`record_event` reads the event document and the records the event touches,
then writes them all in one atomic batch whose every write carries a
precondition: the event document must not exist yet, and each record must be
unchanged since it was read (or still absent). If another delivery wrote
first, the batch fails as a whole and the event is read and applied again;
then it is either a duplicate or applied on top of the other write. So an
event is applied exactly once even when Stripe delivers it twice at the same
moment, and no update is lost when a session's events arrive together.

Why not a transaction: a Firestore transaction holds locks on what it read
until it commits, and concurrent transactions on one document wait for each
other's locks. Eight concurrent deliveries of one event on Google's emulator
kept aborting each other after its 2 s lock timeout until all of them were
answered 503 (measured: docs/webhook.md). Preconditions hold no locks; the
state machine is idempotent, so a retry is always safe. Inside an instance,
deliveries for one session or payment intent also take turns before
reading, so they do not race each other at all.

Failing fast is part of not losing events: the webhook must answer within
Stripe's timeout, and an error answer makes Stripe retry later. Every
operation is bounded by OPERATION_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import weakref
from datetime import UTC, datetime, timedelta

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
RPC_RETRY = retry_async.AsyncRetry(
    predicate=retry_async.if_transient_error, initial=0.1, maximum=1.0, multiplier=2.0, timeout=RPC_TIMEOUT_SECONDS
)

# A batch whose precondition failed: another write got there first. Read again.
RACED = (api_exceptions.AlreadyExists, api_exceptions.FailedPrecondition, api_exceptions.Aborted)

# Errors that mean "Firestore did not store it": answer 503 so Stripe retries.
UNAVAILABLE_ERRORS = (
    api_exceptions.GoogleAPICallError,  # any gRPC status
    api_exceptions.RetryError,
    auth_exceptions.TransportError,  # no access token: the metadata server is unreachable
    auth_exceptions.RefreshError,
    TimeoutError,
)


class FirestoreStore:
    """A `PaymentStore` in three Firestore collections."""

    def __init__(
        self,
        payments_collection: str,
        events_collection: str,
        intents_collection: str = "payment_intents",
        project: str | None = None,
        emulator_host: str | None = None,
    ):
        self.payments_collection = payments_collection
        self.events_collection = events_collection
        self.intents_collection = intents_collection
        self.project = project
        self.description = (
            f"Firestore collections {payments_collection}, {intents_collection} and {events_collection}"
            + (f" on the emulator at {emulator_host}" if emulator_host else "")
        )
        self._client: firestore.AsyncClient | None = None
        self._turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def record_event(self, change: state.Change) -> bool:
        event_id = change.event_id
        assert event_id is not None, "an event's change names the event"

        async def attempt() -> bool | None:
            if isinstance(change, state.ChargeChange):
                stored_event, intent = await self._read(self.event(event_id), self.intent(change.payment_intent))
                session_id = intent.get("session_id") if intent.exists else None
                payment = (await self._read(self.payment(session_id)))[0] if session_id else None
            else:
                stored_event, payment, intent = await self._session_records(change, self.event(event_id))
            if stored_event.exists:
                return False
            new_payment, new_intent = state.record_change(
                _data(payment), _data(intent), change, firestore.SERVER_TIMESTAMP
            )
            batch = self._get_client().batch()
            _write(batch, self.payment(new_payment["session_id"]) if new_payment else None, new_payment, payment)
            _write(batch, self.intent(new_intent["payment_intent"]) if new_intent else None, new_intent, intent)
            batch.create(
                self.event(event_id),
                {
                    "type": change.event_type,
                    "session_id": new_payment["session_id"] if new_payment else None,
                    "payment_intent": new_intent["payment_intent"]
                    if new_intent
                    else getattr(change, "payment_intent", None),
                    "created": change.created,
                    "received_at": firestore.SERVER_TIMESTAMP,
                    "expires_at": datetime.now(UTC) + EVENT_RETENTION,
                },
            )
            await batch.commit(retry=RPC_RETRY, timeout=RPC_TIMEOUT_SECONDS)
            return True

        return await self._bounded(self._until_written(change, attempt))

    async def record_session(self, change: state.SessionChange) -> dict:
        async def attempt() -> dict | None:
            payment, intent = await self._session_records(change)
            before = _data(payment)
            after, new_intent = state.record_change(before, _data(intent), change, firestore.SERVER_TIMESTAMP)
            assert after is not None  # a session change always gives a payment record
            if before is not None and state.same(before, after):
                return before
            batch = self._get_client().batch()
            _write(batch, self.payment(change.session_id), after, payment)
            _write(batch, self.intent(new_intent["payment_intent"]) if new_intent else None, new_intent, intent)
            results = await batch.commit(retry=RPC_RETRY, timeout=RPC_TIMEOUT_SECONDS)
            # What the server stored for SERVER_TIMESTAMP is the commit time.
            written = results[0].update_time
            return {k: written if v is firestore.SERVER_TIMESTAMP else v for k, v in after.items()}

        return await self._bounded(self._until_written(change, attempt))

    async def get_payment(self, session_id: str) -> dict | None:
        async def run() -> dict | None:
            snapshot = await self.payment(session_id).get(retry=RPC_RETRY, timeout=RPC_TIMEOUT_SECONDS)
            return snapshot.to_dict() if snapshot.exists else None

        return await self._bounded(run())

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            # AsyncClient has no public way to close its gRPC channel (google-cloud-firestore 2.34);
            # the API client it wraps closes it through its transport.
            await client._firestore_api.transport.close()

    def payment(self, session_id: str):
        return self._get_client().collection(self.payments_collection).document(session_id)

    def intent(self, payment_intent: str):
        return self._get_client().collection(self.intents_collection).document(payment_intent)

    def event(self, event_id: str):
        return self._get_client().collection(self.events_collection).document(event_id)

    def _get_client(self) -> firestore.AsyncClient:
        """One client per instance, created on first use (in the serving event loop): it holds the gRPC channel.

        Credentials and project come from the environment (Application Default
        Credentials on Google Cloud; the client talks to an emulator by
        itself when FIRESTORE_EMULATOR_HOST is set).
        """
        if self._client is None:
            self._client = firestore.AsyncClient(project=self.project)
        return self._client

    async def _session_records(self, change: state.SessionChange, *first) -> list:
        """`first`, then the session's record and its PaymentIntent's (None when it has none)."""
        refs = [*first, self.payment(change.session_id)]
        if change.payment_intent:
            refs.append(self.intent(change.payment_intent))
        found = await self._read(*refs)
        payment = found[len(first)]
        if change.payment_intent:
            return found
        known = payment.get("payment_intent") if payment.exists else None  # a change without it, for one that has it
        return [*found, (await self._read(self.intent(known)))[0] if known else None]

    async def _read(self, *refs) -> list:
        """Documents in one bounded RPC, in the order asked for."""
        found = {}
        async for snapshot in self._get_client().get_all(list(refs), retry=RPC_RETRY, timeout=RPC_TIMEOUT_SECONDS):
            found[snapshot.reference.path] = snapshot
        return [found[ref.path] for ref in refs]

    async def _until_written(self, change: state.Change, attempt):
        """Take this instance's turn on what `change` touches, then attempt until no other write raced ours."""
        async with self._turn(change):
            delay = 0.02
            while True:
                try:
                    return await attempt()
                except RACED:
                    await asyncio.sleep(random.uniform(0, delay))  # another instance wrote first: read again
                    delay = min(delay * 2, 0.5)

    @contextlib.asynccontextmanager
    async def _turn(self, change: state.Change):
        """The session's and the PaymentIntent's locks in this instance, always in that order."""
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

        Past the bound it is cancelled and the caller gets StoreUnavailable.
        A batch already on its way may still land after we answered 503:
        that is fine, Stripe's retry of the delivery then finds the event
        stored and is answered as a duplicate.
        """
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_SECONDS):
                return await operation
        except TimeoutError:
            raise StoreUnavailable("Firestore did not answer in time") from None
        except Exception as error:
            if _is_unavailable(error):
                raise StoreUnavailable(f"Firestore failed ({error.__class__.__name__})") from error
            raise


def _write(batch, ref, record: dict | None, snapshot) -> None:
    """Add `record` to `batch` unless None: created if it was absent when read, else updated only if unchanged."""
    if record is None:
        return
    if snapshot is None or not snapshot.exists:
        batch.create(ref, record)
    else:
        # Every field is written (records only ever gain fields), and only over what was read.
        batch.update(ref, record, option=firestore.LastUpdateOption(snapshot.update_time))


def _data(snapshot) -> dict | None:
    return snapshot.to_dict() if snapshot is not None and snapshot.exists else None


def _is_unavailable(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is Firestore failing."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UNAVAILABLE_ERRORS):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False
