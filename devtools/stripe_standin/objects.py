"""The objects Stripe answers with: line items, prices, Checkout Sessions and events.

(PaymentIntents, Charges, Refunds and Disputes are in ``payments``.)

These are what application code reads, so they carry Stripe's fields,
id prefixes and defaults for each mode and ui_mode. A stored session
remembers the API version it was created with: responses rename its
``ui_mode`` for the version a request asks for, while events keep the
session's own version, as Stripe's do. Building objects is kept apart from
the server so the shapes can be read without the HTTP and locking around them.
The rules that only show while building (a price id the stand-in cannot know,
a recurring price in payment mode, mixed currencies) are checked here too.
"""

from __future__ import annotations

import copy
import decimal
import random
import string
import time
from typing import Any

from devtools.stripe_standin.errors import StripeError, _missing, _no_such
from devtools.stripe_standin.params import (
    _HOSTED_UI_MODES,
    SESSION_LIFETIME_SECONDS,
    _ui_mode_for_version,
)

_ALPHANUMERIC = string.ascii_letters + string.digits


def _random_id(prefix: str, length: int = 24) -> str:
    """Stripe-like object id; not secret, so a fast PRNG is fine."""
    return prefix + "".join(random.choices(_ALPHANUMERIC, k=length))


def build_line_items(params: dict[str, Any], livemode: bool, now: int | None = None) -> list[dict[str, Any]]:
    """Turn ``line_items`` params into Stripe line item objects.

    Only inline ``price_data`` is supported: the stand-in keeps no catalogue,
    so a Price or Product id is answered the way Stripe answers an id it does
    not know.
    """
    now = int(time.time()) if now is None else now
    mode = params["mode"]
    items = []
    currency = params.get("currency")
    for index, item in enumerate(params.get("line_items", [])):
        path = f"line_items[{index}]"
        if "price" in item:
            raise _no_such("price", item["price"], f"{path}[price]")
        if "price_data" not in item:
            raise StripeError(
                400,
                f"You must specify either `price` or `price_data` in {path}.",
                code="parameter_missing",
                param=f"{path}[price_data]",
            )
        if "quantity" not in item:
            raise StripeError(
                400,
                f"Quantity is required. Add `quantity` to `{path}`",
                code="parameter_missing",
                param=f"{path}[quantity]",
            )
        price_data = item["price_data"]
        price = _build_price(price_data, f"{path}[price_data]", livemode, now)
        if mode == "payment" and price["recurring"] is not None:
            raise StripeError(
                400,
                "You specified `payment` mode but passed a recurring price. Either switch "
                "to `subscription` mode or use only one-time prices.",
                param=f"{path}[price_data][recurring]",
            )
        if currency is None:
            currency = price["currency"]
        elif price["currency"] != currency.lower():
            raise StripeError(
                400,
                "All line items must use the same currency.",
                param=f"{path}[price_data][currency]",
            )
        quantity = item["quantity"]
        amount = int((decimal.Decimal(price["unit_amount_decimal"]) * quantity).to_integral_value())
        items.append(
            {
                "id": _random_id("li_"),
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price["currency"],
                "description": price_data["product_data"]["name"],
                "price": price,
                "quantity": quantity,
            }
        )
    if mode == "subscription" and not any(i["price"]["recurring"] for i in items):
        raise StripeError(
            400,
            "You must provide at least one recurring price in `subscription` mode when using prices.",
            param="line_items",
        )
    return items


def _build_price(data: dict[str, Any], path: str, livemode: bool, now: int) -> dict[str, Any]:
    if "unit_amount" in data and "unit_amount_decimal" in data:
        raise StripeError(
            400,
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
            code="parameters_exclusive",
            param=f"{path}[unit_amount]",
        )
    if "unit_amount" not in data and "unit_amount_decimal" not in data:
        raise _missing(f"{path}[unit_amount]")
    if "product" in data:
        raise _no_such("product", data["product"], f"{path}[product]")
    if "product_data" not in data:
        raise _missing(f"{path}[product_data]")
    unit_amount = data.get("unit_amount")
    if unit_amount is not None and unit_amount < 0:
        raise StripeError(
            400,
            f"Invalid non-negative integer: {unit_amount}",
            param=f"{path}[unit_amount]",
        )
    unit_amount_decimal = data.get("unit_amount_decimal", str(unit_amount))
    recurring = data.get("recurring")
    return {
        "id": _random_id("price_"),
        "object": "price",
        "active": False,
        "billing_scheme": "per_unit",
        "created": now,
        "currency": data["currency"].lower(),
        "livemode": livemode,
        "metadata": {},
        "product": _random_id("prod_", 14),
        "recurring": (
            {
                "interval": recurring["interval"],
                "interval_count": recurring.get("interval_count", 1),
                "usage_type": "licensed",
            }
            if recurring
            else None
        ),
        "tax_behavior": data.get("tax_behavior", "unspecified"),
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount_decimal,
    }


def build_session(
    params: dict[str, Any],
    line_items: list[dict[str, Any]],
    livemode: bool,
    now: int | None = None,
) -> dict[str, Any]:
    """A checkout.session object as Stripe returns it right after creation."""
    session_id = _random_id("cs_live_" if livemode else "cs_test_", 58)
    now = int(time.time()) if now is None else now
    ui_mode = params["ui_mode"]
    hosted = ui_mode in _HOSTED_UI_MODES
    mode = params["mode"]
    amount = sum(item["amount_subtotal"] for item in line_items) if line_items else None
    currency = line_items[0]["currency"] if line_items else params.get("currency")
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes"),
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {
            "enabled": bool(params.get("automatic_tax", {}).get("enabled", False)),
            "liability": None,
            "provider": None,
            "status": None,
        },
        "billing_address_collection": params.get("billing_address_collection"),
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None if hosted else f"{session_id}_secret_{_random_id('', 24)}",
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency.lower() if currency else None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_creation": params.get("customer_creation", "if_required") if mode == "payment" else None,
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "expires_at": params.get("expires_at", now + SESSION_LIFETIME_SECONDS),
        "invoice": None,
        "invoice_creation": None,
        "livemode": livemode,
        "locale": params.get("locale"),
        "metadata": params.get("metadata", {}),
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required" if mode == "setup" else "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "redirect_on_completion": None if hosted else params.get("redirect_on_completion", "always"),
        "return_url": params.get("return_url"),
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": params.get("submit_type"),
        "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": ui_mode,
        "url": f"https://checkout.stripe.com/c/pay/{session_id}" if hosted else None,
        "wallet_options": None,
    }


class _SessionRecord:
    """A stored session plus what Stripe remembers about how it was made."""

    __slots__ = ("api_version", "data", "line_items")

    def __init__(self, data: dict[str, Any], api_version: str, line_items: list[dict[str, Any]]):
        self.data = data
        self.api_version = api_version
        self.line_items = line_items

    def render(self, api_version: str, expand: tuple[str, ...] = ()) -> dict[str, Any]:
        """The session as a response for the given API version (shallow copy)."""
        rendered = dict(self.data)
        rendered["ui_mode"] = _ui_mode_for_version(rendered["ui_mode"], api_version)
        if "line_items" in expand:
            rendered["line_items"] = {
                "object": "list",
                "data": self.line_items,
                "has_more": False,
                "url": f"/v1/checkout/sessions/{self.data['id']}/line_items",
            }
        return rendered

    def snapshot(self) -> dict[str, Any]:
        """An independent copy for an event, in the session's own API version."""
        return copy.deepcopy(self.render(self.api_version))


def build_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    api_version: str,
    livemode: bool,
    created: int,
    previous_attributes: dict[str, Any] | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """An event carrying ``data_object`` (a snapshot the caller will not change).

    ``previous_attributes`` is how Stripe shows what an update changed: the
    old values of the changed fields, on events such as ``charge.refunded``.
    """
    data: dict[str, Any] = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": _random_id("evt_"),
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
