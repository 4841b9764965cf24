"""A local stand-in for the Stripe Checkout Sessions API.

The real ``stripe`` SDK can be pointed at it (``base_addresses={"api": url}``)
so tests, local runs and benchmarks exercise the genuine client code path:
form-encoded requests, Stripe-shaped JSON errors, idempotency keys and the
SDK's own retry logic. Create parameters are checked against the parameter
types that ship with stripe-python, and ``ui_mode`` is checked against the
requested API version, so a parameter Stripe would reject fails here too
instead of first failing in production.

Besides the Stripe endpoints it offers controls for simulating payments
(completion, asynchronous payment results, expiry) and for injecting
latency and failures, both as Python methods and as unauthenticated HTTP
endpoints under ``/_standin/`` so other processes can drive it.

Library use::

    with StripeStandin() as standin:
        client = stripe.StripeClient(
            "sk_test_123", base_addresses={"api": standin.base_url}
        )
        session = client.v1.checkout.sessions.create(params={...})
        events = standin.complete(session.id)

Command line::

    python -m devtools.stripe_standin --host 127.0.0.1 --port 12111 [--latency 0.1]
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import copy
import decimal
import functools
import json
import random
import re
import signal
import socket
import string
import sys
import threading
import time
import typing
import urllib.parse
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from typing_extensions import is_typeddict

import stripe._request_options as _request_options_module
from stripe._stripe_context import StripeContext
from stripe.params.checkout import (
    SessionCreateParams,
    SessionExpireParams,
    SessionListParams,
    SessionRetrieveParams,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "LoggedRequest",
    "StripeError",
    "StripeStandin",
    "decode_form",
    "main",
]

# The version stripe-python 16.1.0 pins; used when a request sends none.
DEFAULT_API_VERSION = "2026-10-28.endive"

# The "dahlia" release renamed the Checkout ui_mode values.
UI_MODE_RENAME_VERSION = "2026-03-25"
NEW_UI_MODES = ("hosted_page", "embedded_page", "elements", "form")
OLD_UI_MODES = ("hosted", "embedded", "custom")
_OLD_TO_NEW_UI_MODE = {
    "hosted": "hosted_page",
    "embedded": "embedded_page",
    "custom": "elements",
}
_NEW_TO_OLD_UI_MODE = {new: old for old, new in _OLD_TO_NEW_UI_MODE.items()}
_HOSTED_UI_MODES = frozenset({"hosted", "hosted_page"})
# Modes whose page lives on the merchant's site, so Stripe needs somewhere to
# send the customer back to and has no success/cancel page of its own.
_RETURN_URL_UI_MODES = frozenset({"embedded", "embedded_page", "custom", "elements"})

SESSION_LIFETIME_SECONDS = 24 * 60 * 60
MIN_SESSION_LIFETIME_SECONDS = 30 * 60
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500

# How each injectable status looks on the wire: (error type, code, message).
_SERVER_FAULT = ("api_error", None, "Something went wrong on Stripe's end (simulated).")
FAULTS = {
    400: ("invalid_request_error", None, "Invalid request (simulated)."),
    401: ("authentication_error", None, "Invalid API Key provided: {masked_key}"),
    402: ("card_error", "card_declined", "Your card was declined."),
    403: ("invalid_request_error", None, "The provided key does not have the required permissions."),
    404: ("invalid_request_error", "resource_missing", "No such resource (simulated)."),
    409: (
        "invalid_request_error",
        "lock_timeout",
        "This object cannot be accessed right now because another API request or Stripe "
        "process is currently accessing it.",
    ),
    429: (
        "rate_limit_error",
        "rate_limit",
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
    ),
    500: _SERVER_FAULT,
    502: _SERVER_FAULT,
    503: _SERVER_FAULT,
    504: _SERVER_FAULT,
}
FAULT_STATUSES = tuple(FAULTS)
# Only these request headers are kept in the request log; never Authorization.
LOGGED_HEADERS = (
    "Stripe-Version",
    "Idempotency-Key",
    "Stripe-Account",
    "Stripe-Context",
    "Content-Type",
)

_API_KEY_RE = re.compile(r"^(?:sk|rk)_(test|live)_[A-Za-z0-9_]+$")
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:\.[a-z_]+)?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INTEGER_RE = re.compile(r"^-?\d+$")
_FORM_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_FORM_SEGMENT_RE = re.compile(r"\[([^\[\]]*)\]")

_SESSIONS_PATH = "/v1/checkout/sessions"
_SESSION_PATH_RE = re.compile(r"^/v1/checkout/sessions/([^/]+)$")
_EXPIRE_PATH_RE = re.compile(r"^/v1/checkout/sessions/([^/]+)/expire$")
_ADMIN_SESSION_RE = re.compile(
    r"^/_standin/sessions/([^/]+)(?:/(complete|async_payment|expire))?$"
)
_ADMIN_EVENT_RE = re.compile(r"^/_standin/events/([^/]+)$")

_ALPHANUMERIC = string.ascii_letters + string.digits
_REQUEST_OPTION_KEYS = frozenset(_request_options_module.RequestOptions.__annotations__)


def _random_id(prefix: str, length: int = 24) -> str:
    """Stripe-like object id; not secret, so a fast PRNG is fine."""
    return prefix + "".join(random.choices(_ALPHANUMERIC, k=length))


def _is_new_api_version(api_version: str) -> bool:
    return api_version[:10] >= UI_MODE_RENAME_VERSION


def _valid_ui_modes(api_version: str) -> Tuple[str, ...]:
    return NEW_UI_MODES if _is_new_api_version(api_version) else OLD_UI_MODES


def _ui_mode_for_version(ui_mode: Optional[str], api_version: str) -> Optional[str]:
    """Name a session's ui_mode the way the given API version spells it."""
    if _is_new_api_version(api_version):
        return _OLD_TO_NEW_UI_MODE.get(ui_mode, ui_mode)
    return _NEW_TO_OLD_UI_MODE.get(ui_mode, ui_mode)


def _one_of(values) -> str:
    values = list(values)
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + ", or " + values[-1]


# --------------------------------------------------------------------------
# Errors


class StripeError(Exception):
    """An API failure, answered in Stripe's error JSON shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: Optional[str] = None,
        param: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def to_dict(self) -> Dict[str, Any]:
        error = {
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "type": self.type,
        }
        if self.code:
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace(
                "_", "-"
            )
        return {"error": error}


def _missing(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def _no_such(kind: str, object_id: str, param: str, status: int = 400) -> StripeError:
    return StripeError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


# --------------------------------------------------------------------------
# Form decoding


def decode_form(text: str) -> Dict[str, Any]:
    """Decode Stripe's bracket-notation form encoding into nested values.

    ``line_items[0][price_data][currency]=usd`` becomes
    ``{"line_items": [{"price_data": {"currency": "usd"}}]}``. All leaves stay
    strings; the parameter schema decides what they mean. Objects whose keys
    are exactly ``0..n-1`` become lists (the SDK always encodes lists that
    way); the schema turns them back into objects where an object is meant.
    """
    root: Dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        _insert(root, _split_form_key(key), value, key)
    return _listify(root)


def _split_form_key(key: str) -> List[str]:
    match = _FORM_KEY_RE.match(key)
    if not match:
        return [key]
    return [match.group(1)] + _FORM_SEGMENT_RE.findall(match.group(2))


def _insert(root: Dict[str, Any], segments: List[str], value: str, raw_key: str) -> None:
    node = root
    for segment in segments[:-1]:
        if segment == "":
            raise StripeError(400, f"Invalid array: {raw_key}", param=raw_key)
        child = node.get(segment)
        if not isinstance(child, dict):
            # A scalar here is usually "" (Stripe's "unset"); the nested form wins.
            child = node[segment] = {}
        node = child
    last = segments[-1]
    if last == "":
        last = str(len(node))  # "expand[]=a&expand[]=b" appends
    node[last] = value


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _listify(child) for key, child in value.items()}
    if converted and all(key.isdigit() and str(int(key)) == key for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(index)] for index in indexes]
    return converted


# --------------------------------------------------------------------------
# Parameter checking against the TypedDicts stripe-python ships


@functools.lru_cache(maxsize=None)
def _typeddict_fields(cls: type) -> Tuple[Dict[str, Any], frozenset]:
    """Resolved field types and required keys of a stripe params TypedDict.

    The top-level params classes inherit the SDK's RequestOptions (api_key,
    idempotency_key, ...), which are client options rather than wire
    parameters, so they are left out. Their annotations refer to names only
    imported for type checkers, hence the extended namespace.
    """
    namespace = {
        **vars(_request_options_module),
        "StripeContext": StripeContext,
        **vars(sys.modules[cls.__module__]),
    }
    hints = typing.get_type_hints(cls, globalns=namespace)
    fields = {name: tp for name, tp in hints.items() if name not in _REQUEST_OPTION_KEYS}
    required = frozenset(cls.__required_keys__) - _REQUEST_OPTION_KEYS
    return fields, required


_SCALAR_NAMES = {
    int: "integer",
    bool: "boolean",
    str: "string",
    float: "decimal",
    decimal.Decimal: "decimal",
}


def _child_path(path: str, key: Any) -> str:
    return f"{path}[{key}]" if path else str(key)


def _is_object_type(tp: Any) -> bool:
    return is_typeddict(tp) or typing.get_origin(tp) in (dict, collections.abc.Mapping)


def _is_list_type(tp: Any) -> bool:
    return typing.get_origin(tp) is list


def _type_label(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string"


def check_params(value: Any, tp: Any, path: str = "", name: str = "") -> Any:
    """Validate a decoded parameter against its stripe-python type.

    Returns the value converted to the type's Python shape (ints, bools,
    lists, nested dicts). Raises StripeError the way Stripe answers: unknown
    keys, missing required keys, malformed scalars and out-of-range enums.
    """
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        return _check_union(value, typing.get_args(tp), path, name)
    if origin is typing.Literal:
        return _check_enum(value, typing.get_args(tp), path, name)
    if is_typeddict(tp):
        return _check_typeddict(value, tp, path)
    if origin is list:
        return _check_list(value, typing.get_args(tp)[0], path, name)
    if origin in (dict, collections.abc.Mapping):
        return _check_mapping(value, typing.get_args(tp)[1], path, name)
    if tp in _SCALAR_NAMES:
        return _check_scalar(value, tp, path)
    return value


def _check_union(value: Any, options: Tuple[Any, ...], path: str, name: str) -> Any:
    options = tuple(option for option in options if option is not type(None))
    literals = [option for option in options if typing.get_origin(option) is typing.Literal]
    others = [option for option in options if option not in literals]
    if isinstance(value, dict):
        matches = [option for option in others if _is_object_type(option)]
    elif isinstance(value, list):
        matches = [option for option in others if _is_list_type(option)]
        # A map like metadata whose keys happen to be 0..n-1 decodes as a list.
        matches = matches or [option for option in others if _is_object_type(option)]
    else:
        literal_values = [v for option in literals for v in typing.get_args(option)]
        if value == "" and "" in literal_values:
            return value  # Literal[''] is how the SDK spells "unset"
        enum_values = tuple(v for v in literal_values if v != "")
        if enum_values and path != "ui_mode":
            # "Literal[...]|str" only keeps the SDK open to future values;
            # the API itself accepts just the listed ones. ui_mode depends on
            # the API version and is checked separately.
            return _check_enum(value, enum_values, path, name)
        matches = [option for option in others if option in _SCALAR_NAMES]
        if str in matches:
            matches = [str]
        matches = matches or others
    if not matches:
        expected = "object" if any(_is_object_type(o) for o in others) else "string"
        raise StripeError(
            400,
            f"Invalid {expected}: expected {expected} for {path} but got {_type_label(value)}.",
            param=path,
        )
    return check_params(value, matches[0], path, name)


def _check_enum(value: Any, allowed: Tuple[Any, ...], path: str, name: str) -> Any:
    if not isinstance(value, str) or value not in allowed:
        raise StripeError(
            400,
            f"Invalid {name or path}: must be one of {_one_of([str(v) for v in allowed])}",
            param=path,
        )
    return value


def _check_typeddict(value: Any, cls: type, path: str) -> Optional[Dict[str, Any]]:
    if value == "":
        return None  # an empty value unsets a whole hash
    if not isinstance(value, dict):
        raise StripeError(
            400,
            f"Invalid object: expected an object for {path} but got {_type_label(value)}.",
            param=path,
        )
    fields, required = _typeddict_fields(cls)
    for key in value:
        if key not in fields:
            param = _child_path(path, key)
            raise StripeError(
                400,
                f"Received unknown parameter: {param}",
                code="parameter_unknown",
                param=param,
            )
    for key in sorted(required):
        if key not in value:
            raise _missing(_child_path(path, key))
    result = {}
    for key, child in value.items():
        checked = check_params(child, fields[key], _child_path(path, key), key)
        if checked is not None:
            result[key] = checked
    return result


def _check_list(value: Any, item_type: Any, path: str, name: str) -> List[Any]:
    if value == "":
        return []
    if not isinstance(value, list):
        raise StripeError(
            400,
            f"Invalid array: expected an array for {path} but got {_type_label(value)}.",
            param=path,
        )
    return [check_params(item, item_type, f"{path}[{index}]", name) for index, item in enumerate(value)]


def _check_mapping(value: Any, value_type: Any, path: str, name: str) -> Dict[str, Any]:
    if value == "":
        return {}
    if isinstance(value, list):
        value = {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict):
        raise StripeError(
            400,
            f"Invalid object: expected an object for {path} but got {_type_label(value)}.",
            param=path,
        )
    if name == "metadata":
        _check_metadata_limits(value, path)
        # Posting an empty value for a key unsets it; on create that means "absent".
        value = {key: item for key, item in value.items() if item != ""}
    return {
        key: check_params(item, value_type, _child_path(path, key), key)
        for key, item in value.items()
    }


def _check_metadata_limits(metadata: Dict[str, Any], path: str) -> None:
    if len(metadata) > METADATA_MAX_KEYS:
        raise StripeError(
            400,
            f"Invalid {path}: metadata can have up to {METADATA_MAX_KEYS} keys, "
            f"but you passed in {len(metadata)} keys.",
            param=path,
        )
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise StripeError(
                400,
                f"Metadata keys can have up to {METADATA_MAX_KEY_LENGTH} characters, but you "
                f"passed in a key that is {len(key)} characters. Invalid key: {key}",
                param=_child_path(path, key),
            )
        if isinstance(value, str) and len(value) > METADATA_MAX_VALUE_LENGTH:
            raise StripeError(
                400,
                f"Metadata values can have up to {METADATA_MAX_VALUE_LENGTH} characters, but "
                f"you passed in a value that is {len(value)} characters.",
                param=_child_path(path, key),
            )


def _check_scalar(value: Any, tp: type, path: str) -> Any:
    if not isinstance(value, str):
        raise StripeError(
            400,
            f"Invalid {_SCALAR_NAMES[tp]}: expected a single value for {path} "
            f"but got {_type_label(value)}.",
            param=path,
        )
    if value == "":
        raise StripeError(
            400,
            f"You passed an empty string for '{path}'. We assume empty values are an attempt "
            f"to unset a parameter; however '{path}' cannot be unset. You should remove "
            f"'{path}' from your request or supply a non-empty value.",
            code="parameter_invalid_empty",
            param=path,
        )
    if tp is int:
        if not _INTEGER_RE.match(value):
            raise StripeError(
                400,
                f"Invalid integer: {value}",
                code="parameter_invalid_integer",
                param=path,
            )
        return int(value)
    if tp is bool:
        if value not in ("true", "false"):
            raise StripeError(400, f"Invalid boolean: {value}", param=path)
        return value == "true"
    if tp in (float, decimal.Decimal):
        try:
            number = decimal.Decimal(value)
        except decimal.InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise StripeError(400, f"Invalid decimal: {value}", param=path)
    return value


# --------------------------------------------------------------------------
# Checkout Session rules


def validate_create_params(params: Dict[str, Any], api_version: str) -> Dict[str, Any]:
    """Check create parameters the way Stripe does for this API version.

    Returns the normalized parameters. The schema check comes first, as on
    Stripe, so a stray parameter is reported before any business rule.
    """
    params = check_params(params, SessionCreateParams) or {}
    if "mode" not in params:
        raise _missing("mode")
    _check_ui_mode(params, api_version)
    _check_redirect_urls(params)
    if params["mode"] in ("payment", "subscription") and not params.get("line_items"):
        raise _missing("line_items")
    if "customer_email" in params and not _EMAIL_RE.match(params["customer_email"]):
        raise StripeError(
            400,
            f"Invalid email address: {params['customer_email']}",
            code="email_invalid",
            param="customer_email",
        )
    if "customer" in params:
        if "customer_email" in params:
            raise StripeError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                code="parameters_exclusive",
                param="customer_email",
            )
        raise _no_such("customer", params["customer"], "customer")
    if "expires_at" in params:
        _check_expires_at(params["expires_at"])
    return params


def _check_ui_mode(params: Dict[str, Any], api_version: str) -> None:
    valid = _valid_ui_modes(api_version)
    ui_mode = params.setdefault("ui_mode", valid[0])
    if ui_mode not in valid:
        raise StripeError(
            400,
            f"Invalid ui_mode: '{ui_mode}' is not a valid value on API version "
            f"{api_version}. Use one of {_one_of(valid)}.",
            param="ui_mode",
        )


def _check_redirect_urls(params: Dict[str, Any]) -> None:
    ui_mode = params["ui_mode"]
    if ui_mode not in _RETURN_URL_UI_MODES:
        return
    for forbidden in ("success_url", "cancel_url"):
        if forbidden in params:
            raise StripeError(
                400,
                f"You cannot set `{forbidden}` when `ui_mode` is `{ui_mode}`. "
                "Use `return_url` instead.",
                param=forbidden,
            )
    if "return_url" not in params and params.get("redirect_on_completion") != "never":
        raise StripeError(
            400,
            f"`return_url` is required when `ui_mode` is `{ui_mode}` unless "
            "`redirect_on_completion` is `never`.",
            code="parameter_missing",
            param="return_url",
        )


def _check_expires_at(expires_at: int) -> None:
    lifetime = expires_at - time.time()
    if lifetime > SESSION_LIFETIME_SECONDS + 60:
        raise StripeError(
            400,
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at",
        )
    if lifetime < MIN_SESSION_LIFETIME_SECONDS - 60:
        raise StripeError(
            400,
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            param="expires_at",
        )


def build_line_items(params: Dict[str, Any], livemode: bool) -> List[Dict[str, Any]]:
    """Turn ``line_items`` params into Stripe line item objects.

    Only inline ``price_data`` is supported: the stand-in keeps no catalogue,
    so a Price or Product id is answered the way Stripe answers an id it does
    not know.
    """
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
        price = _build_price(price_data, f"{path}[price_data]", livemode)
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


def _build_price(data: Dict[str, Any], path: str, livemode: bool) -> Dict[str, Any]:
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
        "created": int(time.time()),
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
    params: Dict[str, Any], line_items: List[Dict[str, Any]], livemode: bool
) -> Dict[str, Any]:
    """A checkout.session object as Stripe returns it right after creation."""
    session_id = _random_id("cs_live_" if livemode else "cs_test_", 58)
    now = int(time.time())
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

    __slots__ = ("data", "api_version", "line_items")

    def __init__(self, data: Dict[str, Any], api_version: str, line_items: List[Dict[str, Any]]):
        self.data = data
        self.api_version = api_version
        self.line_items = line_items

    def render(self, api_version: str, expand: Tuple[str, ...] = ()) -> Dict[str, Any]:
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

    def snapshot(self) -> Dict[str, Any]:
        """An independent copy for an event, in the session's own API version."""
        return copy.deepcopy(self.render(self.api_version))


# --------------------------------------------------------------------------
# The stand-in


class LoggedRequest(NamedTuple):
    """One API request as received (Authorization is never recorded)."""

    method: str
    path: str
    params: Dict[str, Any]
    headers: Dict[str, str]


class _Fault(NamedTuple):
    status: int
    should_retry: Optional[bool]


class _Reply(NamedTuple):
    status: int
    body: bytes
    headers: Dict[str, str]


class _ApiCall(NamedTuple):
    """An authenticated API request on its way to an endpoint."""

    method: str
    path: str
    params: Dict[str, Any]
    api_key: str
    livemode: bool
    api_version: str
    request_id: str
    idempotency_key: Optional[str]


class _IdempotentResult(NamedTuple):
    method: str
    path: str
    params: Dict[str, Any]
    reply: _Reply
    request_id: str


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")


class StripeStandin:
    """An in-process HTTP server that answers like Stripe's Checkout API.

    All state sits behind one lock, so the server threads and test code can
    use it concurrently. Methods that simulate what happens on Stripe's side
    (``complete``, ``async_payment``, ``expire``) return the events Stripe
    would send to a webhook endpoint.
    """

    def __init__(
        self, latency: float = 0.0, *, log_limit: int = 10_000, idempotency_limit: int = 100_000
    ):
        """``log_limit`` and ``idempotency_limit`` bound memory in long benchmark runs."""
        self._lock = threading.Lock()
        self._latency = float(latency)
        self._log_limit = log_limit
        self._idempotency_limit = idempotency_limit
        self._server: Optional[_StandinServer] = None
        self._thread: Optional[threading.Thread] = None
        self._base_url: Optional[str] = None
        self._clear_state()

    def _clear_state(self) -> None:
        self._sessions: Dict[str, _SessionRecord] = {}
        self._events: List[Dict[str, Any]] = []
        self._events_by_id: Dict[str, Dict[str, Any]] = {}
        self._idempotency: "collections.OrderedDict[Tuple[str, str], _IdempotentResult]" = (
            collections.OrderedDict()
        )
        self._faults: collections.deque = collections.deque()
        self._requests: collections.deque = collections.deque(maxlen=self._log_limit)
        self._request_count = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving in a background thread and return the base URL."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._server = _StandinServer((host, port), self)
        bound_host, bound_port = self._server.server_address[:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
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

    def __enter__(self) -> "StripeStandin":
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

    # -- controls ----------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds of delay added before every API response."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        seconds = float(seconds)
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._latency = seconds

    def fail_next(
        self, count: int = 1, status: int = 500, *, should_retry: Optional[bool] = None
    ) -> None:
        """Make the next ``count`` API requests fail the way Stripe fails.

        Any status in ``FAULTS`` works: 500 is an api_error, 401 an
        authentication_error, 429 a rate_limit_error, and so on. 5xx answers
        carry ``Stripe-Should-Retry: true`` (the request never ran, so a
        retry is safe); 429 carries ``Retry-After: 1`` and no retry advice,
        as Stripe's rate limiter does. ``should_retry`` forces the header
        either way. Injected failures never touch state or the idempotency
        store, so an SDK retry with the same key goes through.
        """
        if status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {FAULT_STATUSES}")
        if count < 0:
            raise ValueError("count cannot be negative")
        with self._lock:
            self._faults.extend([_Fault(status, should_retry)] * count)

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def reset(self) -> None:
        """Start over: no sessions, events, idempotency keys, faults, latency or logged requests."""
        with self._lock:
            self._clear_state()
        self._latency = 0.0

    @property
    def requests(self) -> List[LoggedRequest]:
        """The most recent API requests, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many API requests arrived since start or the last reset."""
        with self._lock:
            return self._request_count

    # -- state inspection and simulation -----------------------------------

    def session(self, session_id: str) -> Dict[str, Any]:
        """A copy of a stored session, in the API version it was created with."""
        with self._lock:
            return self._record(session_id).snapshot()

    @property
    def sessions(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [record.snapshot() for record in self._sessions.values()]

    @property
    def events(self) -> List[Dict[str, Any]]:
        """Every event generated so far, oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._events)

    def event(self, event_id: str) -> Dict[str, Any]:
        with self._lock:
            try:
                return copy.deepcopy(self._events_by_id[event_id])
            except KeyError:
                raise KeyError(f"No such event: '{event_id}'") from None

    def complete(
        self,
        session_id: str,
        payment_status: str = "paid",
        customer_email: Optional[str] = None,
        name: str = "Jenny Rosen",
    ) -> List[Dict[str, Any]]:
        """The customer finished Checkout; returns [checkout.session.completed].

        ``payment_status="unpaid"`` models a delayed payment method (e.g. a
        bank debit) whose result arrives later via ``async_payment``. The
        email defaults to the session's ``customer_email``, else Jenny's.
        """
        if payment_status not in ("paid", "unpaid", "no_payment_required"):
            raise ValueError("payment_status must be paid, unpaid or no_payment_required")
        with self._lock:
            record = self._record(session_id)
            session = record.data
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}, not open")
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
                session["payment_intent"] = _random_id("pi_")
            elif session["mode"] == "subscription":
                session["subscription"] = _random_id("sub_")
                session["invoice"] = _random_id("in_")
            else:
                session["setup_intent"] = _random_id("seti_")
            return [self._emit("checkout.session.completed", record)]

    def async_payment(self, session_id: str, succeeded: bool) -> List[Dict[str, Any]]:
        """A delayed payment settled or failed; only for complete, unpaid sessions."""
        with self._lock:
            record = self._record(session_id)
            session = record.data
            if session["status"] != "complete" or session["payment_status"] != "unpaid":
                raise ValueError(
                    f"session {session_id} is {session['status']}/{session['payment_status']}; "
                    "async payment results only apply to complete, unpaid sessions"
                )
            if succeeded:
                session["payment_status"] = "paid"
                event_type = "checkout.session.async_payment_succeeded"
            else:
                event_type = "checkout.session.async_payment_failed"
            return [self._emit(event_type, record)]

    def expire(self, session_id: str) -> List[Dict[str, Any]]:
        """Expire an open session (as its expires_at passing would); returns [checkout.session.expired]."""
        with self._lock:
            record = self._record(session_id)
            if record.data["status"] != "open":
                raise ValueError(f"session {session_id} is {record.data['status']}, not open")
            return [self._expire_locked(record)]

    # -- internals (callers hold the lock) ---------------------------------

    def _record(self, session_id: str) -> _SessionRecord:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise KeyError(f"No such checkout.session: '{session_id}'") from None

    def _expire_locked(self, record: _SessionRecord, request_id: Optional[str] = None,
                       idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        record.data["status"] = "expired"
        record.data["url"] = None
        return self._emit("checkout.session.expired", record, request_id, idempotency_key)

    def _emit(self, event_type: str, record: _SessionRecord, request_id: Optional[str] = None,
              idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        event = {
            "id": _random_id("evt_"),
            "object": "event",
            "api_version": record.api_version,
            "created": int(time.time()),
            "data": {"object": record.snapshot()},
            "livemode": record.data["livemode"],
            "pending_webhooks": 1,
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": event_type,
        }
        self._events.append(event)
        self._events_by_id[event["id"]] = event
        return copy.deepcopy(event)

    # -- HTTP entry point ----------------------------------------------------

    def handle_http(self, method: str, target: str, headers: Any, body: bytes) -> _Reply:
        """Answer one HTTP request; ``headers`` needs a case-insensitive ``get``."""
        split = urllib.parse.urlsplit(target)
        if split.path.startswith("/_standin/"):
            return self._handle_admin(method, split.path, headers, body)
        return self._handle_api(method, split.path, split.query, headers, body)

    def _handle_api(self, method: str, path: str, query: str, headers: Any, body: bytes) -> _Reply:
        request_id = _random_id("req_", 14)
        api_version = headers.get("Stripe-Version") or DEFAULT_API_VERSION
        reply_headers = {"Request-Id": request_id, "Stripe-Version": api_version}
        idempotency_key = headers.get("Idempotency-Key") if method == "POST" else None
        if idempotency_key:
            reply_headers["Idempotency-Key"] = idempotency_key
        try:
            params = decode_form(query if method == "GET" else body.decode("utf-8"))
        except (StripeError, UnicodeDecodeError):
            params = None
        self._log(method, path, params, headers)
        if self._latency > 0:
            time.sleep(self._latency)
        try:
            self._raise_injected_fault(headers.get("Authorization"))
            if params is None:
                raise StripeError(400, "The request body could not be decoded as a form.")
            api_key, livemode = _authenticate(headers.get("Authorization"))
            if not _VERSION_RE.match(api_version):
                raise StripeError(400, f"Invalid Stripe API version: {api_version}")
            call = _ApiCall(
                method, path, params, api_key, livemode, api_version, request_id, idempotency_key
            )
            with self._lock:
                reply = self._route(call)
        except StripeError as error:
            reply_headers.update(error.headers)
            return _Reply(error.status, _json_bytes(error.to_dict()), reply_headers)
        reply.headers.update(reply_headers)
        return reply

    def _log(self, method: str, path: str, params: Any, headers: Any) -> None:
        kept = {name: headers.get(name) for name in LOGGED_HEADERS if headers.get(name) is not None}
        with self._lock:
            self._request_count += 1
            self._requests.append(LoggedRequest(method, path, params if params is not None else {}, kept))

    def _raise_injected_fault(self, authorization: Optional[str]) -> None:
        with self._lock:
            if not self._faults:
                return
            fault = self._faults.popleft()
        raise _fault_error(fault, authorization)

    def _route(self, call: "_ApiCall") -> _Reply:
        uses_key = call.method == "POST" and call.idempotency_key
        if uses_key:
            stored = self._idempotency.get((call.api_key, call.idempotency_key))
            if stored is not None:
                return _replay(stored, call)
        reply = self._dispatch(call)
        if uses_key:
            self._remember(call, reply)
        return reply

    def _dispatch(self, call: "_ApiCall") -> _Reply:
        if call.path == _SESSIONS_PATH and call.method == "POST":
            return self._create(call)
        if call.path == _SESSIONS_PATH and call.method == "GET":
            return self._list(call)
        match = _SESSION_PATH_RE.match(call.path)
        if match and call.method == "GET":
            return self._retrieve(call, match.group(1))
        match = _EXPIRE_PATH_RE.match(call.path)
        if match and call.method == "POST":
            return self._expire_via_api(call, match.group(1))
        raise StripeError(
            404,
            f"Unrecognized request URL ({call.method}: {call.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    def _create(self, call: "_ApiCall") -> _Reply:
        checked = validate_create_params(call.params, call.api_version)
        expand = _expand_list(checked)
        line_items = build_line_items(checked, call.livemode)
        session = build_session(checked, line_items, call.livemode)
        record = _SessionRecord(session, call.api_version, line_items)
        self._sessions[session["id"]] = record
        return _Reply(200, _json_bytes(record.render(call.api_version, expand)), {})

    def _list(self, call: "_ApiCall") -> _Reply:
        """Newest first, as Stripe lists; only `status` and `limit` filter here."""
        params = check_params(call.params, SessionListParams) or {}
        limit = int(params.get("limit") or 10)
        if not 1 <= limit <= 100:
            raise StripeError(400, "limit must be between 1 and 100", param="limit")
        records = [
            r for r in reversed(list(self._sessions.values()))
            if r.data["livemode"] == call.livemode and params.get("status") in (None, r.data["status"])
        ]
        page = {
            "object": "list",
            "data": [r.render(call.api_version) for r in records[:limit]],
            "has_more": len(records) > limit,
            "url": _SESSIONS_PATH,
        }
        return _Reply(200, _json_bytes(page), {})

    def _retrieve(self, call: "_ApiCall", session_id: str) -> _Reply:
        expand = _expand_list(check_params(call.params, SessionRetrieveParams) or {})
        record = self._visible_record(session_id, call.livemode)
        return _Reply(200, _json_bytes(record.render(call.api_version, expand)), {})

    def _expire_via_api(self, call: "_ApiCall", session_id: str) -> _Reply:
        expand = _expand_list(check_params(call.params, SessionExpireParams) or {})
        record = self._visible_record(session_id, call.livemode)
        status = record.data["status"]
        if status != "open":
            raise StripeError(
                400,
                f"Only Checkout Sessions with a status in [\"open\"] can be expired. "
                f"This Checkout Session has a status of \"{status}\".",
                param="session",
            )
        self._expire_locked(record, call.request_id, call.idempotency_key)
        return _Reply(200, _json_bytes(record.render(call.api_version, expand)), {})

    def _visible_record(self, session_id: str, livemode: bool) -> _SessionRecord:
        """Sessions are invisible to keys of the other mode, as on Stripe."""
        record = self._sessions.get(session_id)
        if record is None or record.data["livemode"] != livemode:
            raise _no_such("checkout.session", session_id, "session", status=404)
        return record

    def _remember(self, call: "_ApiCall", reply: _Reply) -> None:
        """Keep a successful result for replay; failed validation is not kept, as on Stripe."""
        if reply.status != 200:
            return
        self._idempotency[(call.api_key, call.idempotency_key)] = _IdempotentResult(
            call.method, call.path, call.params, _Reply(reply.status, reply.body, {}), call.request_id
        )
        while len(self._idempotency) > self._idempotency_limit:
            self._idempotency.popitem(last=False)

    # -- admin endpoints -----------------------------------------------------

    def _handle_admin(self, method: str, path: str, headers: Any, body: bytes) -> _Reply:
        try:
            payload = _decode_admin_body(headers, body)
            result = self._admin_route(method, path, payload)
            return _Reply(200, _json_bytes(result), {})
        except KeyError as error:
            return _admin_error(404, error.args[0] if error.args else str(error))
        except (ValueError, TypeError) as error:
            return _admin_error(400, str(error))

    def _admin_route(self, method: str, path: str, payload: Dict[str, Any]) -> Any:
        match = _ADMIN_SESSION_RE.match(path)
        if match:
            session_id, action = match.groups()
            return self._admin_session(method, session_id, action, payload)
        match = _ADMIN_EVENT_RE.match(path)
        if match and method == "GET":
            return self.event(match.group(1))
        if path == "/_standin/events" and method == "GET":
            return {"object": "list", "data": self.events, "has_more": False}
        if path == "/_standin/requests" and method == "GET":
            with self._lock:
                logged = [entry._asdict() for entry in self._requests]
                count = self._request_count
            return {"request_count": count, "data": logged}
        if path == "/_standin/faults" and method == "POST":
            self.fail_next(
                int(payload.get("fail_next", 1)),
                int(payload.get("status", 500)),
                should_retry=_optional_bool(payload.get("should_retry")),
            )
            return {"pending_faults": self.pending_faults}
        if path == "/_standin/latency" and method == "POST":
            self.latency = float(payload.get("seconds", 0))
            return {"seconds": self.latency}
        if path == "/_standin/reset" and method == "POST":
            self.reset()
            return {"reset": True}
        raise KeyError(f"Unrecognized stand-in admin URL ({method}: {path})")

    def _admin_session(
        self, method: str, session_id: str, action: Optional[str], payload: Dict[str, Any]
    ) -> Any:
        if action is None and method == "GET":
            return self.session(session_id)
        if method != "POST" or action is None:
            raise KeyError(f"Unrecognized stand-in admin URL ({method}: {session_id})")
        if action == "complete":
            events = self.complete(
                session_id,
                payment_status=payload.get("payment_status", "paid"),
                customer_email=payload.get("customer_email"),
                name=payload.get("name", "Jenny Rosen"),
            )
        elif action == "async_payment":
            succeeded = _optional_bool(payload.get("succeeded"))
            if succeeded is None:
                raise ValueError("succeeded (true or false) is required")
            events = self.async_payment(session_id, succeeded)
        else:
            events = self.expire(session_id)
        return {"session": self.session(session_id), "events": events}


def _authenticate(authorization: Optional[str]) -> Tuple[str, bool]:
    """Return (api key, livemode) or raise Stripe's 401."""
    if not authorization or not authorization.startswith("Bearer ") or not authorization[7:].strip():
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
            "or we can help at https://support.stripe.com/.",
            type="authentication_error",
        )
    api_key = authorization[7:].strip()
    match = _API_KEY_RE.match(api_key)
    if not match:
        raise StripeError(
            401, f"Invalid API Key provided: {_mask_key(api_key)}", type="authentication_error"
        )
    return api_key, match.group(1) == "live"


def _mask_key(api_key: str) -> str:
    """Show a key the way Stripe echoes it: its prefix and last four characters."""
    if len(api_key) < 16:
        return api_key[:8] + "****"
    return api_key[:8] + "*" * (len(api_key) - 12) + api_key[-4:]


def _fault_error(fault: _Fault, authorization: Optional[str]) -> StripeError:
    error_type, code, message = FAULTS[fault.status]
    api_key = (authorization or "")[len("Bearer "):].strip()
    error = StripeError(
        fault.status,
        message.format(masked_key=_mask_key(api_key)),
        type=error_type,
        code=code,
    )
    should_retry = fault.should_retry
    if fault.status == 429:
        error.headers["Retry-After"] = "1"
    elif fault.status >= 500 and should_retry is None:
        should_retry = True
    if should_retry is not None:
        error.headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    return error


def _replay(stored: _IdempotentResult, call: _ApiCall) -> _Reply:
    if (stored.method, stored.path, stored.params) != (call.method, call.path, call.params):
        raise StripeError(
            400,
            "Keys for idempotent requests can only be used with the same parameters they "
            f"were first used with. Try using a key other than '{call.idempotency_key}' if you "
            "meant to execute a different request.",
            type="idempotency_error",
        )
    headers = {"Idempotent-Replayed": "true", "Original-Request": stored.request_id}
    return _Reply(stored.reply.status, stored.reply.body, headers)


def _expand_list(params: Dict[str, Any]) -> Tuple[str, ...]:
    expand = tuple(params.get("expand", ()))
    for field in expand:
        if field != "line_items":
            raise StripeError(
                400,
                f"This property cannot be expanded ({field}). The stand-in can only expand line_items.",
                param="expand",
            )
    return expand


def _optional_bool(value: Any) -> Optional[bool]:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _decode_admin_body(headers: Any, body: bytes) -> Dict[str, Any]:
    """Admin endpoints take JSON or a plain form, whichever is handier."""
    text = body.decode("utf-8").strip() if body else ""
    if not text:
        return {}
    content_type = headers.get("Content-Type") or ""
    if "json" in content_type or text.startswith("{"):
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object")
        return payload
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def _admin_error(status: int, message: str) -> _Reply:
    error = StripeError(status, message, code="resource_missing" if status == 404 else None)
    return _Reply(status, _json_bytes(error.to_dict()), {})


# --------------------------------------------------------------------------
# HTTP plumbing


class _StandinServer(ThreadingHTTPServer):
    """Thread-per-connection server that can cut idle keep-alive connections on stop."""

    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open dozens of connections at once; the default backlog of 5 drops SYNs.
    request_queue_size = 256

    def __init__(self, address: Tuple[str, int], standin: StripeStandin):
        self.standin = standin
        self._connections: set = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-request is routine (timeouts, benchmarks ending)."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StripeStandin/1.0"
    sys_version = ""
    # Replies go out in one write, and small writes must not wait for ACKs.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the request log on the stand-in is the record."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._write(_admin_error(400, "Malformed request body framing."))
            return
        try:
            reply = self.server.standin.handle_http(self.command, self.path, self.headers, body)
        except Exception as error:  # a bug here must not kill the connection silently
            reply = _Reply(
                500,
                _json_bytes(StripeError(500, f"Stand-in failure: {error!r}", type="api_error").to_dict()),
                {"Stripe-Should-Retry": "false"},
            )
        self._write(reply)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, reply: _Reply) -> None:
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {reply.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
            "Content-Type: application/json",
            f"Content-Length: {len(reply.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + reply.body)


# --------------------------------------------------------------------------
# Command line


def main(argv: Optional[List[str]] = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description="Local stand-in for Stripe's Checkout Sessions API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added before every API response"
    )
    args = parser.parse_args(argv)

    standin = StripeStandin(latency=args.latency)
    url = standin.start(args.host, args.port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"Stripe stand-in listening on {url}", flush=True)
    while not stop.wait(1.0):
        pass
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
