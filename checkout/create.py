"""POST /api/checkout/embedded-session: start an Embedded Checkout session.

verify App Check (when on) → count the client against its rate → parse the
body → validate it → ask Stripe for a session → answer with its
client_secret, which the page hands to Stripe.js to mount the payment form.
Everything the buyer could tamper with (price, product, return URL) is fixed
here on the server; the body may only add metadata and a prefilled email.
"""

from __future__ import annotations

import hashlib
from typing import Any

from common.errors import InvalidRequest
from common.http import client_ip, parse_json, read_body
from common.stripe_rules import (
    IDEMPOTENCY_KEY_MAX_CHARS,
    METADATA_KEY_MAX_CHARS,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX_CHARS,
    embedded_ui_mode,
)

MAX_BODY_BYTES = 16 * 1024
PRODUCT_NAME = "Hero Me Feelings - Personalized AAC Board"
PRODUCT_DESCRIPTION = "AI-powered personalized feelings board with 24+ custom images"
UNIT_AMOUNT_CENTS = 200
CURRENCY = "usd"
# How much of a client's key an error message may show.
LABEL_CHARS = 8


async def create_embedded_session(request, context) -> tuple[dict, int]:
    settings = context.settings
    # App Check first: it needs no I/O once its keys are cached, so a request
    # from outside our app is turned away before it costs a counted write.
    app_id = await context.app_check().verify(request) if settings.app_check_project_number else None
    client = client_ip(request, settings.trusted_proxy_hops)
    await context.limiter().check(
        "create_embedded_session", settings.rate_limit_create, client, fail_open=settings.rate_limit_fail_open_create
    )
    fields = parse_body(await read_body(request, MAX_BODY_BYTES))
    idempotency_key = parse_idempotency_key(request.headers.get("idempotency-key"))
    params = session_params(settings.return_url, **fields)

    stripe = await context.stripe()
    session = await stripe.create_checkout_session(params, scoped_idempotency_key(idempotency_key, client, app_id))
    return {"client_secret": session["client_secret"]}, 200


def parse_body(raw: bytes) -> dict:
    """The optional fields of the request body, validated; {} for an empty body.

    Only zero bytes mean "no body": whitespace alone is not a JSON document.
    """
    if not raw:
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    unknown = [key for key in body if key not in ("metadata", "customer_email")]
    if unknown:
        raise InvalidRequest(f"Unknown field: {label(unknown[0])}. Allowed fields: metadata, customer_email.")

    fields: dict[str, Any] = {}
    if body.get("metadata") is not None:
        fields["metadata"] = validate_metadata(body["metadata"])
    if body.get("customer_email") is not None:
        fields["customer_email"] = validate_email(body["customer_email"])
    return fields


def validate_metadata(metadata) -> dict:
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be an object of string values.")
    if len(metadata) > METADATA_MAX_KEYS:
        raise InvalidRequest(f"metadata may have at most {METADATA_MAX_KEYS} keys.")
    for position, (key, value) in enumerate(metadata.items(), start=1):
        if not key or len(key) > METADATA_KEY_MAX_CHARS or "[" in key or "]" in key:
            raise InvalidRequest(
                f"metadata keys must be 1-{METADATA_KEY_MAX_CHARS} characters without '[' or ']' (entry {position})."
            )
        if not isinstance(value, str):
            raise InvalidRequest(f"metadata.{label(key)} (entry {position}) must be a string.")
        if len(value) > METADATA_VALUE_MAX_CHARS:
            raise InvalidRequest(
                f"metadata.{label(key)} (entry {position}) must be at most {METADATA_VALUE_MAX_CHARS} characters."
            )
    return metadata


def label(key: str) -> str:
    """How a message names a client's key: a short prefix of letters, digits, '_' and '-', never the key at length.

    A key may be anything a buyer typed (a child's name, a birth date); the
    message goes back to the page and may be shown or reported.
    """
    shown = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "?" for c in key[:LABEL_CHARS])
    return shown + "..." if len(key) > LABEL_CHARS else shown


def validate_email(value) -> str:
    """A syntactically valid address; deliverability is Stripe's business, not a DNS lookup's."""
    if not isinstance(value, str):
        raise InvalidRequest("customer_email must be a string.")
    import email_validator  # only requests that prefill an email pay for the import

    try:
        return email_validator.validate_email(value, check_deliverability=False).normalized
    except email_validator.EmailNotValidError:
        raise InvalidRequest("customer_email is not a valid email address.") from None


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > IDEMPOTENCY_KEY_MAX_CHARS or not value.isascii() or not value.isprintable():
        raise InvalidRequest(f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters.")
    return value


def scoped_idempotency_key(key: str | None, client: str, app_id: str | None = None) -> str | None:
    """The key sent to Stripe: the caller's key, scoped to the caller.

    Stripe's idempotency keys are account-wide: passed as they come, two
    browsers sending the same key and body would get the same session and
    client_secret. Hashed with the client's address (and the App Check app
    id when there is one), a retried click from the same caller still gets
    its session back, and another caller never can. 64 hex digits, well
    within Stripe's 255 characters.
    """
    if key is None:
        return None
    scope = f"{client}\n{app_id or ''}\n{key}"
    return hashlib.sha256(scope.encode("utf-8")).hexdigest()


def session_params(return_url: str, metadata: dict | None = None, customer_email: str | None = None) -> dict:
    """The Checkout Session to create: one $2.00 board, paid once, embedded in our page."""
    params: dict[str, Any] = {
        "line_items": [
            {
                "price_data": {
                    "currency": CURRENCY,
                    "product_data": {"name": PRODUCT_NAME, "description": PRODUCT_DESCRIPTION},
                    "unit_amount": UNIT_AMOUNT_CENTS,
                },
                "quantity": 1,
            }
        ],
        "mode": "payment",
        "ui_mode": embedded_ui_mode(),
        "return_url": return_url,
    }
    if metadata:
        params["metadata"] = metadata
    if customer_email:
        params["customer_email"] = customer_email
    return params
