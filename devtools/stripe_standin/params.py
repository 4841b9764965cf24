"""What the stand-in accepts: form decoding and the checks on request parameters.

The stand-in is only worth trusting if a request Stripe would reject fails
here too, instead of first failing in production. So parameters are checked
against the TypedDicts that ship with stripe-python (the schema follows the
installed SDK rather than a hand-kept copy), then against the Checkout rules
Stripe applies on top, some of which depend on the API version: the
"dahlia" release renamed the ``ui_mode`` values.
"""

from __future__ import annotations

import collections.abc
import decimal
import functools
import re
import sys
import time
import types
import typing
import urllib.parse
from typing import Any

import stripe
from stripe.params.checkout import SessionCreateParams
from typing_extensions import is_typeddict

from common import stripe_rules
from devtools.stripe_standin.errors import StripeError, _missing, _no_such

# The version the service pins; used when a request sends none.
DEFAULT_API_VERSION = stripe_rules.API_VERSION

# The "dahlia" release renamed the Checkout ui_mode values.
UI_MODE_RENAME_VERSION = stripe_rules.EMBEDDED_PAGE_SINCE
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
METADATA_MAX_KEYS = stripe_rules.METADATA_MAX_KEYS
METADATA_MAX_KEY_LENGTH = stripe_rules.METADATA_KEY_MAX_CHARS
METADATA_MAX_VALUE_LENGTH = stripe_rules.METADATA_VALUE_MAX_CHARS

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INTEGER_RE = re.compile(r"^-?\d+$")
_FORM_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_FORM_SEGMENT_RE = re.compile(r"\[([^\[\]]*)\]")

# Every top-level params TypedDict extends the SDK's RequestOptions (api_key,
# idempotency_key, ...): client options, never sent as parameters.
_REQUEST_OPTION_KEYS = frozenset(stripe.RequestOptions.__annotations__)


def _is_new_api_version(api_version: str) -> bool:
    return api_version[:10] >= UI_MODE_RENAME_VERSION


def _valid_ui_modes(api_version: str) -> tuple[str, ...]:
    return NEW_UI_MODES if _is_new_api_version(api_version) else OLD_UI_MODES


def _ui_mode_for_version(ui_mode: str | None, api_version: str) -> str | None:
    """Name a session's ui_mode the way the given API version spells it."""
    if ui_mode is None:
        return None
    if _is_new_api_version(api_version):
        return _OLD_TO_NEW_UI_MODE.get(ui_mode, ui_mode)
    return _NEW_TO_OLD_UI_MODE.get(ui_mode, ui_mode)


def _one_of(values) -> str:
    values = list(values)
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + ", or " + values[-1]


# --------------------------------------------------------------------------
# Form decoding


def decode_form(text: str) -> dict[str, Any]:
    """Decode Stripe's bracket-notation form encoding into nested values.

    ``line_items[0][price_data][currency]=usd`` becomes
    ``{"line_items": [{"price_data": {"currency": "usd"}}]}``. All leaves stay
    strings; the parameter schema decides what they mean. Objects whose keys
    are exactly ``0..n-1`` become lists (the SDK always encodes lists that
    way); the schema turns them back into objects where an object is meant.
    """
    root: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        _insert(root, _split_form_key(key), value, key)
    return _listify(root)


def _split_form_key(key: str) -> list[str]:
    match = _FORM_KEY_RE.match(key)
    if not match:
        return [key]
    return [match.group(1), *_FORM_SEGMENT_RE.findall(match.group(2))]


def _insert(root: dict[str, Any], segments: list[str], value: str, raw_key: str) -> None:
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


@functools.cache
def _typeddict_fields(cls: type) -> tuple[dict[str, Any], frozenset]:
    """Resolved field types and required keys of a stripe params TypedDict.

    The request options are dropped before resolving: their annotations name
    types the SDK imports for type checkers only. The rest are forward
    references to the nested TypedDicts declared beside the class, so they
    resolve in the namespace of the module that declares it.
    """
    declared = {name: tp for name, tp in cls.__annotations__.items() if name not in _REQUEST_OPTION_KEYS}
    fields = typing.get_type_hints(
        types.SimpleNamespace(__annotations__=declared),
        globalns=vars(sys.modules[cls.__module__]),
    )
    required = frozenset(getattr(cls, "__required_keys__", ())) - _REQUEST_OPTION_KEYS  # a TypedDict's
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
    if origin is typing.Union or origin is types.UnionType:  # "A|B" strings give the latter
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


def _check_union(value: Any, options: tuple[Any, ...], path: str, name: str) -> Any:
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


def _check_enum(value: Any, allowed: tuple[Any, ...], path: str, name: str) -> Any:
    if not isinstance(value, str) or value not in allowed:
        raise StripeError(
            400,
            f"Invalid {name or path}: must be one of {_one_of([str(v) for v in allowed])}",
            param=path,
        )
    return value


def _check_typeddict(value: Any, cls: type, path: str) -> dict[str, Any] | None:
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


def _check_list(value: Any, item_type: Any, path: str, name: str) -> list[Any]:
    if value == "":
        return []
    if not isinstance(value, list):
        raise StripeError(
            400,
            f"Invalid array: expected an array for {path} but got {_type_label(value)}.",
            param=path,
        )
    return [check_params(item, item_type, f"{path}[{index}]", name) for index, item in enumerate(value)]


def _check_mapping(value: Any, value_type: Any, path: str, name: str) -> dict[str, Any]:
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
    return {key: check_params(item, value_type, _child_path(path, key), key) for key, item in value.items()}


def _check_metadata_limits(metadata: dict[str, Any], path: str) -> None:
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
            f"Invalid {_SCALAR_NAMES[tp]}: expected a single value for {path} but got {_type_label(value)}.",
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


def validate_create_params(params: dict[str, Any], api_version: str, now: float | None = None) -> dict[str, Any]:
    """Check create parameters the way Stripe does for this API version.

    Returns the normalized parameters. The schema check comes first, as on
    Stripe, so a stray parameter is reported before any business rule.
    ``now`` is Stripe's clock, which ``expires_at`` is measured from.
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
        _check_expires_at(params["expires_at"], time.time() if now is None else now)
    return params


def _check_ui_mode(params: dict[str, Any], api_version: str) -> None:
    valid = _valid_ui_modes(api_version)
    ui_mode = params.setdefault("ui_mode", valid[0])
    if ui_mode not in valid:
        raise StripeError(
            400,
            f"Invalid ui_mode: '{ui_mode}' is not a valid value on API version "
            f"{api_version}. Use one of {_one_of(valid)}.",
            param="ui_mode",
        )


def _check_redirect_urls(params: dict[str, Any]) -> None:
    ui_mode = params["ui_mode"]
    if ui_mode not in _RETURN_URL_UI_MODES:
        return
    for forbidden in ("success_url", "cancel_url"):
        if forbidden in params:
            raise StripeError(
                400,
                f"You cannot set `{forbidden}` when `ui_mode` is `{ui_mode}`. Use `return_url` instead.",
                param=forbidden,
            )
    if "return_url" not in params and params.get("redirect_on_completion") != "never":
        raise StripeError(
            400,
            f"`return_url` is required when `ui_mode` is `{ui_mode}` unless `redirect_on_completion` is `never`.",
            code="parameter_missing",
            param="return_url",
        )


def _check_expires_at(expires_at: int, now: float) -> None:
    lifetime = expires_at - now
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
