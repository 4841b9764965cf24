"""The money after a Checkout Session: PaymentIntents, Charges, Refunds and Disputes.

A payment-mode session that completes gets a PaymentIntent (the session's
``payment_intent``) and a Charge for ``amount_total``: settled at once for
a card, pending until ``async_payment`` for a delayed method. Refunds and
disputes then act on that charge. The shapes follow Stripe's objects of the
pinned API version (fields as in Stripe's OpenAPI fixtures; ``Charge.refunds``
is left out because Stripe no longer includes it unless expanded); the
rules Stripe applies (no refund above what remains, none on a charged-back
payment, one dispute per charge) are checked here, as ``ValueError``
with Stripe's message, since only the simulation methods reach them.
"""

from __future__ import annotations

from typing import Any

from devtools.stripe_standin.objects import _random_id

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
DISPUTE_REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
# Statuses a dispute passes through before it is closed, and the two it closes with.
OPEN_DISPUTE_STATUSES = ("needs_response", "under_review", "warning_needs_response", "warning_under_review")
CLOSED_DISPUTE_STATUSES = ("won", "lost")
# Card networks give the merchant about a week to answer a chargeback.
EVIDENCE_DUE_SECONDS = 7 * 24 * 60 * 60
_CARD = {
    "brand": "visa",
    "country": "US",
    "exp_month": 12,
    "exp_year": 2034,
    "funding": "credit",
    "last4": "4242",
    "network": "visa",
}
_BANK_ACCOUNT = {
    "account_holder_type": "individual",
    "account_type": "checking",
    "bank_name": "STRIPE TEST BANK",
    "last4": "6789",
    "routing_number": "110000000",
}
_INSUFFICIENT_FUNDS = "The customer's account has insufficient funds to cover this payment."


def build_payment_intent(session: dict[str, Any], created: int, settled: bool) -> dict[str, Any]:
    """The session's PaymentIntent: succeeded for a card, processing for a delayed method."""
    intent_id = _random_id("pi_")
    amount = session["amount_total"]
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount if settled else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_{_random_id('', 25)}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": session["currency"],
        "customer": None,
        "description": None,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": session["livemode"],
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": _random_id("pm_"),
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"] if settled else ["us_bank_account"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if settled else "processing",
        "transfer_data": None,
        "transfer_group": None,
    }


def build_charge(session: dict[str, Any], intent: dict[str, Any], created: int, settled: bool) -> dict[str, Any]:
    """The charge for ``intent``: succeeded for a card, pending for a delayed method."""
    details = session["customer_details"] or {}
    method_type = "card" if settled else "us_bank_account"
    method = dict(_CARD) if settled else dict(_BANK_ACCOUNT)
    charge_id = _random_id("ch_")
    return {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if settled else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": _random_id("txn_") if settled else None,
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": details.get("email"),
            "name": details.get("name"),
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "STRIPE STAND-IN",
        "captured": settled,
        "created": created,
        "currency": intent["currency"],
        "customer": None,
        "description": None,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": intent["livemode"],
        "metadata": {},
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": settled,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "payment_method_details": {"type": method_type, method_type: method},
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{_random_id('', 40)}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if settled else "pending",
        "transfer_data": None,
        "transfer_group": None,
    }


def settle(intent: dict[str, Any], charge: dict[str, Any], succeeded: bool) -> None:
    """A delayed payment's result reaches its PaymentIntent and Charge."""
    if succeeded:
        intent.update(status="succeeded", amount_received=intent["amount"])
        charge.update(
            status="succeeded",
            paid=True,
            captured=True,
            amount_captured=charge["amount"],
            balance_transaction=_random_id("txn_"),
        )
        return
    intent.update(
        status="requires_payment_method",
        last_payment_error={
            "code": "insufficient_funds",
            "message": _INSUFFICIENT_FUNDS,
            "type": "invalid_request_error",
        },
    )
    charge.update(status="failed", failure_code="insufficient_funds", failure_message=_INSUFFICIENT_FUNDS)
    charge["outcome"].update(
        network_status="declined_by_network", seller_message=_INSUFFICIENT_FUNDS, type="issuer_declined"
    )


def build_refund(
    charge: dict[str, Any],
    amount: int | None,
    reason: str | None,
    dispute: dict[str, Any] | None,
    created: int,
) -> dict[str, Any]:
    """A refund of ``amount`` cents (default: all that remains), after Stripe's checks."""
    if charge["status"] != "succeeded":
        raise ValueError(f"Charge {charge['id']} is {charge['status']}; only a succeeded charge can be refunded.")
    if dispute is not None and dispute["status"] != "won":
        raise ValueError(f"Charge {charge['id']} has been charged back; cannot issue a refund.")
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining == 0:
        raise ValueError(f"Charge {charge['id']} has already been refunded.")
    amount = remaining if amount is None else _whole_cents(amount)
    if amount < 1:
        raise ValueError("Refund amount must be a positive integer (in cents).")
    if amount > remaining:
        raise ValueError(
            f"Refund amount ({_money(amount)}) is greater than unrefunded amount on charge ({_money(remaining)})"
        )
    if reason is not None and reason not in REFUND_REASONS:
        raise ValueError(f"reason must be one of {', '.join(REFUND_REASONS)}")
    return {
        "id": _random_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": _random_id("txn_"),
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "destination_details": {
            "card": {"reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"},
            "type": "card",
        },
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def apply_refund(charge: dict[str, Any], refund: dict[str, Any]) -> dict[str, Any]:
    """Count a refund on its charge; returns the previous values of what changed."""
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += refund["amount"]
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    return {key: value for key, value in previous.items() if charge[key] != value}


def build_dispute(
    charge: dict[str, Any], amount: int | None, reason: str, existing: dict[str, Any] | None, created: int
) -> dict[str, Any]:
    """A chargeback on a settled charge, waiting for the merchant's response."""
    if charge["status"] != "succeeded":
        raise ValueError(f"Charge {charge['id']} is {charge['status']}; only a succeeded charge can be disputed.")
    if existing is not None:
        raise ValueError(f"Charge {charge['id']} already has a dispute ({existing['id']}).")
    if reason not in DISPUTE_REASONS:
        raise ValueError(f"reason must be one of {', '.join(DISPUTE_REASONS)}")
    amount = charge["amount"] if amount is None else _whole_cents(amount)
    if not 1 <= amount <= charge["amount"]:
        raise ValueError(f"A dispute's amount must be between 1 and the charge's {charge['amount']}.")
    method_type = charge["payment_method_details"]["type"]
    return {
        "id": _random_id("dp_"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {**dict.fromkeys(_EVIDENCE_FIELDS), "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": created + EVIDENCE_DUE_SECONDS,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": charge["livemode"],
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method_details": _dispute_method_details(method_type),
        "reason": reason,
        "status": "needs_response",
    }


def change_dispute(dispute: dict[str, Any], status: str) -> dict[str, Any]:
    """Move an open dispute to ``status``; returns the previous values of what changed."""
    if dispute["status"] in CLOSED_DISPUTE_STATUSES:
        raise ValueError(f"Dispute {dispute['id']} is already closed ({dispute['status']}).")
    if status not in OPEN_DISPUTE_STATUSES + CLOSED_DISPUTE_STATUSES:
        raise ValueError(f"status must be one of {', '.join(OPEN_DISPUTE_STATUSES + CLOSED_DISPUTE_STATUSES)}")
    previous: dict[str, Any] = {"status": dispute["status"]}
    if status in ("under_review", "warning_under_review") and not dispute["evidence_details"]["has_evidence"]:
        # Submitting evidence is what puts a dispute under review.
        previous["evidence_details"] = dict(dispute["evidence_details"])
        dispute["evidence_details"].update(has_evidence=True, submission_count=1)
    dispute["status"] = status
    return previous


def _dispute_method_details(method_type: str) -> dict[str, Any]:
    if method_type != "card":
        return {"type": method_type}
    return {"type": "card", "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"}}


def _whole_cents(amount: Any) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        try:
            amount = int(str(amount), 10)
        except ValueError:
            raise ValueError(f"amount must be a whole number of cents, got {amount!r}") from None
    return amount


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


_EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
