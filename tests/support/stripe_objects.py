"""Stripe objects shaped like the ones the API sends, for tests.

`checkout_session()` builds a complete `checkout.session` object as Stripe
returns it for an Embedded Checkout payment, and `event()` wraps one in the
`event` envelope a webhook delivers. Tests override only the fields they are
about, so everything else stays realistic.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import time

from common.stripe_rules import API_VERSION

# What the Session looks like in the payload of each event type. A
# `completed` event is paid for cards, but unpaid for delayed methods such as
# bank debits, which later send async_payment_succeeded or _failed.
SESSION_AFTER_EVENT = {
    "checkout.session.completed": {"status": "complete", "payment_status": "paid"},
    "checkout.session.async_payment_succeeded": {"status": "complete", "payment_status": "paid"},
    "checkout.session.async_payment_failed": {"status": "complete", "payment_status": "unpaid"},
    "checkout.session.expired": {"status": "expired", "payment_status": "unpaid"},
}

_counter = itertools.count(1)


def new_id(prefix: str, livemode: bool = False) -> str:
    """An id in Stripe's style, unique within the test run."""
    mode = "live" if livemode else "test"
    body = f"{next(_counter):06d}{secrets.token_hex(10)}"
    return f"{prefix}_{mode}_{body}" if prefix == "cs" else f"{prefix}_{body}"


def checkout_session(**overrides) -> dict:
    """An open Embedded Checkout Session for a one-off payment of 19.00 EUR."""
    livemode = overrides.get("livemode", False)
    session_id = overrides.get("id") or new_id("cs", livemode)
    created = overrides.get("created", int(time.time()) - 600)
    session = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": True},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": 1900,
        "amount_total": 1900,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": None,
        "client_reference_id": None,
        "client_secret": f"{session_id}_secret_{secrets.token_hex(12)}",
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": "eur",
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": None,
        "discounts": [],
        "expires_at": created + 24 * 3600,
        "invoice": None,
        "invoice_creation": {"enabled": False, "invoice_data": {}},
        "livemode": livemode,
        "locale": None,
        "metadata": {"product": "hero-me", "order_ref": "ord_000001"},
        "mode": "payment",
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card", "sepa_debit"],
        "payment_status": "unpaid",
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "redirect_on_completion": "always",
        "return_url": "https://example.com/hero-me?session_id={CHECKOUT_SESSION_ID}",
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "embedded_page",
        "url": None,
    }
    session.update(overrides)
    return session


def session_after(event_type: str, session: dict, email: str = "buyer@example.com", **overrides) -> dict:
    """`session` as it appears in the payload of `event_type`.

    Once complete, a Session names the buyer and its PaymentIntent.
    """
    after = copy.deepcopy(session)
    after.update(SESSION_AFTER_EVENT[event_type])
    if after["status"] == "complete":
        after["customer_details"] = {
            "address": {
                "city": None,
                "country": "DE",
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": email,
            "name": "Erika Mustermann",
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        after["payment_intent"] = after.get("payment_intent") or "pi_" + session["id"][-24:]
    after.update(overrides)
    return after


def event(type: str, session: dict, created: int | None = None, id: str | None = None) -> dict:
    """The webhook payload Stripe sends for a Checkout Session event."""
    return {
        "id": id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created if created is not None else int(time.time()),
        "data": {"object": copy.deepcopy(session)},
        "livemode": session.get("livemode", False),
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


def charge(payment_intent: str, amount: int = 1900, amount_refunded: int = 0, **overrides) -> dict:
    """The Charge of a Checkout payment, as charge.refunded carries it."""
    charge_ = {
        "id": new_id("ch"),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "captured": True,
        "currency": "eur",
        "livemode": False,
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": amount_refunded >= amount,
        "status": "succeeded",
    }
    charge_.update(overrides)
    return charge_


def dispute(payment_intent: str, status: str = "needs_response", amount: int = 1900, **overrides) -> dict:
    """A Dispute (chargeback) on the payment's charge."""
    dispute_ = {
        "id": new_id("dp"),
        "object": "dispute",
        "amount": amount,
        "charge": new_id("ch"),
        "created": int(time.time()),
        "currency": "eur",
        "livemode": False,
        "payment_intent": payment_intent,
        "reason": "fraudulent",
        "status": status,
    }
    dispute_.update(overrides)
    return dispute_
