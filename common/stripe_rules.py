"""What this service knows about Stripe's API, in one place for the code, devtools and tests.

Kept free of the `stripe` package so anything may import it cheaply.
"""

from __future__ import annotations

import re

# Pinned here rather than left to the SDK, so upgrading the `stripe` package
# never silently changes request or event shapes. Webhook endpoints are
# registered with the same version.
API_VERSION = "2026-10-28.endive"

# Stripe API 2026-03-25.dahlia renamed ui_mode "embedded" to "embedded_page"
# (and Stripe.js initEmbeddedCheckout to createEmbeddedCheckoutPage).
EMBEDDED_PAGE_SINCE = "2026-03-25"

# Stripe's limits on metadata, checked before a request reaches Stripe.
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_CHARS = 40
METADATA_VALUE_MAX_CHARS = 500

IDEMPOTENCY_KEY_MAX_CHARS = 255

# Stripe ids: a prefix, the mode for the objects whose ids carry one, then
# letters and digits. fullmatch, never match: `$` would accept a trailing newline.
_ID_BODY = r"[A-Za-z0-9]{1,200}"
CHECKOUT_SESSION_ID = re.compile(rf"cs_(test|live)_{_ID_BODY}")
EVENT_ID = re.compile(rf"evt_{_ID_BODY}")
PAYMENT_INTENT_ID = re.compile(rf"pi_{_ID_BODY}")
CHARGE_ID = re.compile(rf"(ch|py)_{_ID_BODY}")
DISPUTE_ID = re.compile(rf"(dp|du)_{_ID_BODY}")
REFUND_ID = re.compile(rf"(re|pyr)_{_ID_BODY}")


def embedded_ui_mode(api_version: str = API_VERSION) -> str:
    """The ui_mode value that means Embedded Checkout on `api_version`."""
    return "embedded_page" if api_version[:10] >= EMBEDDED_PAGE_SINCE else "embedded"


def is_id(pattern: re.Pattern, value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def session_mode(session_id: str) -> str:
    """'test' or 'live': the mode a Checkout Session id was created in."""
    match = CHECKOUT_SESSION_ID.fullmatch(session_id)
    if match is None:
        raise ValueError("not a Checkout Session id")
    return match.group(1)


def key_mode(secret_key: str) -> str:
    """'live' or 'test': which Stripe mode a secret or restricted key works in."""
    return "live" if secret_key.startswith(("sk_live_", "rk_live_")) else "test"
