"""What happens on Stripe's side after a session is created, and the events it sends.

A customer completes Checkout, a delayed payment settles or fails, a
session expires, a payment is refunded or disputed: each function here
changes the stored objects the way Stripe would and returns the events
Stripe would send to a webhook endpoint, already recorded for
``GET /v1/events``. Callers hold ``store.lock``; ``StripeStandin`` exposes
these as its simulation methods and the API uses ``expire`` for
``POST /v1/checkout/sessions/{id}/expire``.
"""

from __future__ import annotations

from typing import Any

from devtools.stripe_standin import payments
from devtools.stripe_standin.objects import _random_id, _SessionRecord
from devtools.stripe_standin.state import Payment, Store

Events = list[dict[str, Any]]


def complete(
    store: Store, record: _SessionRecord, payment_status: str, customer_email: str | None, name: str
) -> Events:
    session = record.data
    if session["status"] != "open":
        raise ValueError(f"session {session['id']} is {session['status']}, not open")
    session["status"] = "complete"
    session["payment_status"] = payment_status
    session["url"] = None
    session["customer_details"] = {
        "address": None,
        "business_name": None,
        "email": customer_email or session["customer_email"] or "jenny@example.com",
        "individual_name": None,
        "name": name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
    if session["mode"] == "payment":
        if payment_status != "no_payment_required":  # nothing to collect, so no PaymentIntent
            _start_payment(store, record, settled=payment_status == "paid")
    elif session["mode"] == "subscription":
        session["subscription"] = _random_id("sub_")
        session["invoice"] = _random_id("in_")
    else:
        session["setup_intent"] = _random_id("seti_")
    return [_session_event(store, "checkout.session.completed", record)]


def _start_payment(store: Store, record: _SessionRecord, settled: bool) -> None:
    now = store.now()
    intent = payments.build_payment_intent(record.data, now, settled)
    charge = payments.build_charge(record.data, intent, now, settled)
    intent["latest_charge"] = charge["id"]
    record.data["payment_intent"] = intent["id"]
    store.add_payment(Payment(record.data["id"], record.api_version, record.data["livemode"], intent, charge))


def async_payment(store: Store, record: _SessionRecord, succeeded: bool) -> Events:
    session = record.data
    if session["status"] != "complete" or session["payment_status"] != "unpaid":
        raise ValueError(
            f"session {session['id']} is {session['status']}/{session['payment_status']}; "
            "async payment results only apply to complete, unpaid sessions"
        )
    payment = store.payments.get(session["id"])
    if payment is not None:
        payments.settle(payment.payment_intent, payment.charge, succeeded)
    if succeeded:
        session["payment_status"] = "paid"
        return [_session_event(store, "checkout.session.async_payment_succeeded", record)]
    return [_session_event(store, "checkout.session.async_payment_failed", record)]


def expire(
    store: Store, record: _SessionRecord, request_id: str | None = None, idempotency_key: str | None = None
) -> Events:
    if record.data["status"] != "open":
        raise ValueError(f"session {record.data['id']} is {record.data['status']}, not open")
    record.data["status"] = "expired"
    record.data["url"] = None
    return [_session_event(store, "checkout.session.expired", record, request_id, idempotency_key)]


def _session_event(
    store: Store,
    event_type: str,
    record: _SessionRecord,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    # Events render the session in the API version it was created with, as Stripe's do.
    return store.emit(
        event_type,
        record.render(record.api_version),
        record.api_version,
        record.data["livemode"],
        request_id=request_id,
        idempotency_key=idempotency_key,
    )


# -- after the payment ------------------------------------------------------


def refund(store: Store, payment: Payment, amount: int | None, reason: str | None) -> Events:
    """[refund.created, charge.refunded]; ``amount`` defaults to what remains."""
    charge = payment.charge
    created = payments.build_refund(charge, amount, reason, payment.dispute, store.now())
    previous = payments.apply_refund(charge, created)
    payment.refunds.append(created)
    store.index(payment, created)
    return [
        _emit(store, payment, "refund.created", created),
        _emit(store, payment, "charge.refunded", charge, previous),
    ]


def open_dispute(store: Store, payment: Payment, reason: str, amount: int | None) -> Events:
    """[charge.dispute.created]: the customer's bank took the payment back, pending a response."""
    dispute = payments.build_dispute(payment.charge, amount, reason, payment.dispute, store.now())
    payment.dispute = dispute
    payment.charge["disputed"] = True
    store.index(payment, dispute)
    return [_emit(store, payment, "charge.dispute.created", dispute)]


def update_dispute(store: Store, payment: Payment, status: str) -> Events:
    """[charge.dispute.updated], e.g. ``under_review`` once evidence is in."""
    dispute = _dispute_of(payment)
    if status in payments.CLOSED_DISPUTE_STATUSES:
        raise ValueError(f"a dispute is closed with close_dispute, not updated to {status}")
    previous = payments.change_dispute(dispute, status)
    return [_emit(store, payment, "charge.dispute.updated", dispute, previous)]


def close_dispute(store: Store, payment: Payment, won: bool) -> Events:
    """[charge.dispute.closed] with status ``won`` or ``lost``."""
    dispute = _dispute_of(payment)
    previous = payments.change_dispute(dispute, "won" if won else "lost")
    return [_emit(store, payment, "charge.dispute.closed", dispute, previous)]


def _emit(
    store: Store,
    payment: Payment,
    event_type: str,
    data_object: dict[str, Any],
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return store.emit(event_type, data_object, payment.api_version, payment.livemode, previous_attributes=previous)


def _dispute_of(payment: Payment) -> dict[str, Any]:
    if payment.dispute is None:
        raise ValueError(f"charge {payment.charge['id']} has no dispute")
    return payment.dispute
