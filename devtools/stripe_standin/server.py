"""StripeStandin: start and stop the stand-in, steer it, look inside, play Stripe's part.

This is the object tests, local runs and the benchmark hold. Its methods
are the stand-in's controls (latency, injected faults, the clock, reset),
read-only views of what it stores, and the simulation of what happens on
Stripe's side after a session is created: completion, delayed payment
results, expiry, refunds and disputes. Each simulation returns the events
Stripe would send to a webhook endpoint; they are also listed by
``GET /v1/events``. HTTP requests arrive through ``handle_http`` and go to
``api`` (Stripe's ``/v1`` endpoints) or ``admin`` (``/_standin/``).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from devtools.stripe_standin import admin, api, simulation
from devtools.stripe_standin.errors import FAULT_STATUSES, _Fault
from devtools.stripe_standin.objects import _SessionRecord
from devtools.stripe_standin.state import LoggedRequest, Payment, Store
from devtools.stripe_standin.transport import _Reply, _StandinServer, make_app

Events = list[dict[str, Any]]


class StripeStandin:
    """An in-process HTTP server that answers like Stripe's API.

    All state sits behind one lock, so the server threads and test code can
    use it concurrently. Getters return copies.
    """

    def __init__(self, latency: float = 0.0, *, log_limit: int = 10_000, idempotency_limit: int = 100_000):
        """``log_limit`` and ``idempotency_limit`` bound memory in long benchmark runs."""
        self._store = Store(log_limit, idempotency_limit)
        self.latency = latency
        self._server: _StandinServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving in a background thread and return the base URL."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._server = _StandinServer(host, port, make_app(self))
        bound_host, bound_port = self._server.server_address[:2]
        self._base_url = f"http://{bound_host!s}:{bound_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="stripe-standin",
            daemon=True,
        )
        self._thread.start()
        return self._base_url

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> StripeStandin:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the stand-in has not been started")
        return self._base_url

    def handle_http(self, method: str, path: str, query: str, headers: Any, body: bytes) -> _Reply:
        """Answer one HTTP request; ``headers`` needs a case-insensitive ``get``."""
        if path.startswith("/_standin/"):
            return admin.handle(self, method, path, headers, body)
        return api.handle(self._store, method, path, query, headers, body)

    # -- controls ----------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds of delay added before every API response."""
        return self._store.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        seconds = float(seconds)
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._store.latency = seconds

    def fail_next(self, count: int = 1, status: int = 500, *, should_retry: bool | None = None) -> None:
        """Make the next ``count`` API requests fail the way Stripe fails.

        Any status in ``FAULTS`` works: 500 is an api_error, 401 an
        authentication_error, 429 a rate_limit_error, and so on. 5xx answers
        carry ``Stripe-Should-Retry: true`` (the request never ran, so a
        retry is safe); 429 carries ``Retry-After: 1`` and no retry advice,
        as Stripe's rate limiter does. ``should_retry`` forces the header
        either way. Injected failures never touch state or the idempotency
        store, so an SDK retry with the same key goes through. They apply
        to every ``/v1`` endpoint, lists included.
        """
        if status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {FAULT_STATUSES}")
        if count < 0:
            raise ValueError("count cannot be negative")
        with self._store.lock:
            self._store.faults.extend([_Fault(status, should_retry)] * count)

    @property
    def pending_faults(self) -> int:
        with self._store.lock:
            return len(self._store.faults)

    @property
    def now(self) -> int:
        """Stripe's clock (Unix seconds): what ``created`` gets on new objects and events."""
        return self._store.now()

    def advance_time(self, seconds: float) -> int:
        """Move Stripe's clock by ``seconds`` (back, if negative); returns the new time.

        Only ``created`` stamps and the 30-day window of ``GET /v1/events``
        follow it, so a test can make events hours or days apart without
        waiting. Nothing expires on its own.
        """
        with self._store.lock:
            self._store.time_offset += float(seconds)
            return self._store.now()

    def reset(self) -> None:
        """Start over: no objects, events, idempotency keys, faults, latency, logged requests
        or clock offset."""
        with self._store.lock:
            self._store.clear()
        self.latency = 0.0

    @property
    def requests(self) -> list[LoggedRequest]:
        """The most recent API requests, oldest first."""
        with self._store.lock:
            return list(self._store.requests)

    @property
    def request_count(self) -> int:
        """How many API requests arrived since start or the last reset."""
        with self._store.lock:
            return self._store.request_count

    # -- what is stored ----------------------------------------------------

    def session(self, session_id: str) -> dict[str, Any]:
        """A copy of a stored session, in the API version it was created with."""
        with self._store.lock:
            return self._record(session_id).snapshot()

    @property
    def sessions(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return [record.snapshot() for record in self._store.sessions.values()]

    @property
    def events(self) -> Events:
        """Every event generated so far, oldest first (copies)."""
        with self._store.lock:
            return copy.deepcopy(self._store.events)

    def event(self, event_id: str) -> dict[str, Any]:
        with self._store.lock:
            try:
                return copy.deepcopy(self._store.events_by_id[event_id])
            except KeyError:
                raise KeyError(f"No such event: '{event_id}'") from None

    def payment(self, object_id: str) -> dict[str, Any]:
        """A session's money, found by any of its ids (``cs_``, ``pi_``, ``ch_``, ``re_``, ``dp_``).

        Returns ``{"session": id, "payment_intent": {...}, "charge": {...},
        "refunds": [{...}, ...], "dispute": {...} or None}``. KeyError for an
        unknown id; ValueError for a session with no payment (not completed,
        nothing to pay, or not payment mode). The simulation methods below
        find a payment the same way.
        """
        with self._store.lock:
            return self._payment(object_id).snapshot()

    def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        return self._object("payment_intent", payment_intent_id)

    def charge(self, charge_id: str) -> dict[str, Any]:
        return self._object("charge", charge_id)

    def refund(self, refund_id: str) -> dict[str, Any]:
        return self._object("refund", refund_id)

    def dispute(self, dispute_id: str) -> dict[str, Any]:
        return self._object("dispute", dispute_id)

    # -- the customer and the payment (simulation) -------------------------

    def complete(
        self,
        session_id: str,
        payment_status: str = "paid",
        customer_email: str | None = None,
        name: str = "Jenny Rosen",
    ) -> Events:
        """The customer finished Checkout; returns [checkout.session.completed].

        ``payment_status="unpaid"`` models a delayed payment method (e.g. a
        bank debit) whose result arrives later via ``async_payment``. The
        email defaults to the session's ``customer_email``, else Jenny's.
        A payment-mode session gets its PaymentIntent and Charge here
        (succeeded when paid, processing/pending when unpaid); no events
        are sent for those, only the session's.
        """
        if payment_status not in ("paid", "unpaid", "no_payment_required"):
            raise ValueError("payment_status must be paid, unpaid or no_payment_required")
        with self._store.lock:
            return simulation.complete(self._store, self._record(session_id), payment_status, customer_email, name)

    def async_payment(self, session_id: str, succeeded: bool) -> Events:
        """A delayed payment settled or failed; only for complete, unpaid sessions.

        Returns [checkout.session.async_payment_succeeded] or [..._failed];
        the PaymentIntent and Charge follow (succeeded, or
        requires_payment_method and failed).
        """
        with self._store.lock:
            return simulation.async_payment(self._store, self._record(session_id), succeeded)

    def expire(self, session_id: str) -> Events:
        """Expire an open session (as its expires_at passing would); returns [checkout.session.expired]."""
        with self._store.lock:
            return simulation.expire(self._store, self._record(session_id))

    def refund_payment(self, object_id: str, amount: int | None = None, *, reason: str | None = None) -> Events:
        """Refund a paid session's payment, found by any of its ids; returns
        [refund.created, charge.refunded].

        ``amount`` is in cents and defaults to all that is not yet refunded;
        more than that is refused, as are refunds of an unsettled charge or
        of one charged back (a dispute not won). ``reason`` is one of
        Stripe's: duplicate, fraudulent, requested_by_customer.
        """
        with self._store.lock:
            return simulation.refund(self._store, self._payment(object_id), amount, reason)

    def open_dispute(self, object_id: str, *, reason: str = "fraudulent", amount: int | None = None) -> Events:
        """The customer's bank disputes a settled payment; returns [charge.dispute.created].

        The dispute (``dp_…``) is ``needs_response``; ``amount`` defaults to
        the charge's. One dispute per charge.
        """
        with self._store.lock:
            return simulation.open_dispute(self._store, self._payment(object_id), reason, amount)

    def update_dispute(self, object_id: str, status: str = "under_review") -> Events:
        """An open dispute moves on (evidence submitted); returns [charge.dispute.updated]."""
        with self._store.lock:
            return simulation.update_dispute(self._store, self._payment(object_id), status)

    def close_dispute(self, object_id: str, won: bool) -> Events:
        """The bank decides; returns [charge.dispute.closed] with status ``won`` or ``lost``."""
        with self._store.lock:
            return simulation.close_dispute(self._store, self._payment(object_id), won)

    # -- internals (callers hold the lock) ---------------------------------

    def _record(self, session_id: str) -> _SessionRecord:
        try:
            return self._store.sessions[session_id]
        except KeyError:
            raise KeyError(f"No such checkout.session: '{session_id}'") from None

    def _payment(self, object_id: str) -> Payment:
        payment = self._store.payments.get(object_id)
        if payment is None:
            if object_id in self._store.sessions:
                raise ValueError(f"checkout.session {object_id} has no payment (not completed, or not payment mode)")
            raise KeyError(f"No such payment: '{object_id}'")
        return payment

    def _object(self, object_type: str, object_id: str) -> dict[str, Any]:
        with self._store.lock:
            found = self._store.objects.get(object_id)
            if found is None or found["object"] != object_type:
                raise KeyError(f"No such {object_type}: '{object_id}'")
            return copy.deepcopy(found)
