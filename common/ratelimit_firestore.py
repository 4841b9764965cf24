"""Rate-limit counts in Firestore, shared by every instance: `RATE_LIMIT_STORAGE_URI=firestore://`.

A fixed window per (endpoint, rate, window start, client) is one document,
`{collection}/{id}` with two fields:

    count        hits in the window so far
    expires_at   the window's end, for a TTL policy that deletes old windows

A hit is ONE write: `set(..., merge=True)` with `Increment(1)`, committed in
one Commit RPC for all of an endpoint's rates. Firestore applies the
increment atomically and answers the new value in the write's
`transform_results`, so two instances counting the same client at the same
moment each see a distinct count, and no read or transaction is needed.

Fixed windows start at multiples of the window's length since the Unix
epoch, so every instance agrees on them without coordination. Unlike a
moving window, a client may spend a rate at the end of one window and again
at the start of the next (up to twice the rate across a boundary).

Document ids are a hash of what identifies the window: they spread writes
over Firestore's key space (no hot range) and keep client addresses out of
the database. Once a client is refused, this instance answers its further
hits in that window from memory, so a flood costs one write per instance,
not one per request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime

from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import firestore

from common.ratelimit import SHARED_TIMEOUT_SECONDS, CountsUnavailable, Rate

DEFAULT_COLLECTION = "rate_limits"

# Errors that mean "Firestore did not count it".
UNAVAILABLE_ERRORS = (
    api_exceptions.GoogleAPICallError,
    api_exceptions.RetryError,
    auth_exceptions.TransportError,
    auth_exceptions.RefreshError,
    # No credentials or no project where the client looked (a machine without
    # Application Default Credentials): the service still answers, counting here.
    auth_exceptions.DefaultCredentialsError,
    OSError,
)


class FirestoreCounts:
    """Fixed-window counts in one Firestore collection."""

    def __init__(self, collection: str = DEFAULT_COLLECTION, project: str | None = None):
        self.collection = collection
        self.project = project
        self.description = f"Firestore collection {collection}"
        self._client: firestore.AsyncClient | None = None
        # (scope, key) → (monotonic time its refusal ends, rates it was refused for)
        self._refused: dict[tuple[str, str], tuple[float, tuple[Rate, ...]]] = {}
        self._lock = threading.Lock()

    async def hit(self, rates: tuple[Rate, ...], scope: str, key: str) -> float | None:
        known = self._known_refusal(rates, scope, key)
        if known is not None:
            return known
        now = time.time()
        windows = [(rate, now - now % rate.seconds + rate.seconds) for rate in rates]
        try:
            client = self._get_client()
            batch = client.batch()
            for rate, end in windows:
                window = client.collection(self.collection).document(document_id(scope, rate, end - rate.seconds, key))
                batch.set(
                    window,
                    {"count": firestore.Increment(1), "expires_at": datetime.fromtimestamp(end, UTC)},
                    merge=True,
                )
            results = await batch.commit(retry=None, timeout=SHARED_TIMEOUT_SECONDS)
            counts = [result.transform_results[0].integer_value for result in results]
        except UNAVAILABLE_ERRORS as error:
            raise CountsUnavailable(error.__class__.__name__) from error
        except IndexError:  # a server that applies transforms must report them; this one did not
            raise CountsUnavailable("NoTransformResult") from None
        waits = [end - now for (rate, end), count in zip(windows, counts, strict=False) if count > rate.amount]
        if not waits:
            return None
        wait = max(waits)
        self._remember_refusal(rates, scope, key, wait)
        return wait

    def _known_refusal(self, rates: tuple[Rate, ...], scope: str, key: str) -> float | None:
        with self._lock:
            until, refused_rates = self._refused.get((scope, key), (0.0, ()))
            remaining = until - time.monotonic()
            if remaining > 0 and refused_rates == rates:
                return remaining
            self._refused.pop((scope, key), None)
            return None

    def _remember_refusal(self, rates: tuple[Rate, ...], scope: str, key: str, wait: float) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._refused) > 10_000:  # many clients refused at once: keep memory bounded
                self._refused = {k: v for k, v in self._refused.items() if v[0] > now}
            self._refused[(scope, key)] = (now + wait, rates)

    def _get_client(self) -> firestore.AsyncClient:
        """One client per instance, made on first use in the serving event loop: it holds the gRPC channel.

        Credentials and project come from the environment, as for the payment
        store (the client talks to an emulator when FIRESTORE_EMULATOR_HOST is set).
        """
        if self._client is None:
            self._client = firestore.AsyncClient(project=self.project)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            # AsyncClient has no public close (google-cloud-firestore 2.34); its transport closes the channel.
            await client._firestore_api.transport.close()


def document_id(scope: str, rate: Rate, window_start: float, key: str) -> str:
    """The window's document id: 32 hex digits of a hash, the same on every instance."""
    text = f"{scope}\n{rate.amount}/{rate.seconds}\n{int(window_start)}\n{key}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
