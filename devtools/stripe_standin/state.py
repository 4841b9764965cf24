"""What the stand-in remembers, behind one lock, and its clock.

Both faces of the stand-in work on this one store: the Stripe API
endpoints (``api``) and the simulation methods on ``StripeStandin``. It
holds no HTTP and no Stripe rules, only the objects, the events in the
order they happened, and the bookkeeping the API needs (idempotency keys,
injected faults, the request log). Every read and write happens with
``lock`` held; nothing slow (latency, I/O) ever runs under it.
"""

from __future__ import annotations

import collections
import copy
import threading
import time
from typing import Any, NamedTuple

from devtools.stripe_standin.objects import _SessionRecord, build_event


class LoggedRequest(NamedTuple):
    """One API request as received (Authorization is never recorded)."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]


class Payment:
    """A paid (or paying) session's money: its PaymentIntent, Charge, Refunds and Dispute.

    Charges, refunds and disputes name a payment intent, never the session;
    this record ties them back to it, and to the API version the session
    was created with, which their events are rendered in.
    """

    __slots__ = ("api_version", "charge", "dispute", "livemode", "payment_intent", "refunds", "session_id")

    def __init__(
        self, session_id: str, api_version: str, livemode: bool, payment_intent: dict[str, Any], charge: dict[str, Any]
    ):
        self.session_id = session_id
        self.api_version = api_version
        self.livemode = livemode
        self.payment_intent = payment_intent
        self.charge = charge
        self.refunds: list[dict[str, Any]] = []
        self.dispute: dict[str, Any] | None = None

    def ids(self) -> list[str]:
        """Every id this payment can be found by."""
        ids = [self.session_id, self.payment_intent["id"], self.charge["id"]]
        ids.extend(refund["id"] for refund in self.refunds)
        if self.dispute is not None:
            ids.append(self.dispute["id"])
        return ids

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "session": self.session_id,
                "payment_intent": self.payment_intent,
                "charge": self.charge,
                "refunds": self.refunds,
                "dispute": self.dispute,
            }
        )


class Store:
    """Sessions, payments, events and API bookkeeping; callers hold ``lock``."""

    def __init__(self, log_limit: int, idempotency_limit: int):
        self.lock = threading.Lock()
        self.log_limit = log_limit
        self.idempotency_limit = idempotency_limit
        self.latency = 0.0
        self.clear()

    def clear(self) -> None:
        self.time_offset = 0.0
        self.sessions: dict[str, _SessionRecord] = {}
        # Every PaymentIntent, Charge, Refund and Dispute by id (ids never collide: prefixes differ).
        self.objects: dict[str, dict[str, Any]] = {}
        # A payment by any of its ids: session, payment intent, charge, refund, dispute.
        self.payments: dict[str, Payment] = {}
        self.events: list[dict[str, Any]] = []
        self.events_by_id: dict[str, dict[str, Any]] = {}
        self.idempotency: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
        self.faults: collections.deque = collections.deque()
        self.requests: collections.deque = collections.deque(maxlen=self.log_limit)
        self.request_count = 0

    def now(self) -> int:
        """Stripe's clock: real time, moved by ``StripeStandin.advance_time``."""
        return int(time.time() + self.time_offset)

    def add_payment(self, payment: Payment) -> None:
        self.index(payment, payment.payment_intent, payment.charge)

    def index(self, payment: Payment, *objects: dict[str, Any]) -> None:
        """Make new objects of a payment retrievable, and the payment findable by their ids."""
        for obj in objects:
            self.objects[obj["id"]] = obj
        for object_id in payment.ids():
            self.payments[object_id] = payment

    def emit(
        self,
        event_type: str,
        data_object: dict[str, Any],
        api_version: str,
        livemode: bool,
        previous_attributes: dict[str, Any] | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Record an event about ``data_object`` as it is now; returns a copy."""
        event = build_event(
            event_type,
            copy.deepcopy(data_object),
            api_version=api_version,
            livemode=livemode,
            created=self.now(),
            previous_attributes=previous_attributes,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )
        self.events.append(event)
        self.events_by_id[event["id"]] = event
        return copy.deepcopy(event)

    def log(self, request: LoggedRequest) -> None:
        self.request_count += 1
        self.requests.append(request)

    def remember(self, key: tuple[str, str], result: Any) -> None:
        self.idempotency[key] = result
        while len(self.idempotency) > self.idempotency_limit:
            self.idempotency.popitem(last=False)
