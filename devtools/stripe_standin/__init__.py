"""A local stand-in for the Stripe Checkout Sessions API (see ``server``)."""

from devtools.stripe_standin.server import (
    DEFAULT_API_VERSION,
    FAULT_STATUSES,
    FAULTS,
    LOGGED_HEADERS,
    METADATA_MAX_KEY_LENGTH,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_LENGTH,
    MIN_SESSION_LIFETIME_SECONDS,
    NEW_UI_MODES,
    OLD_UI_MODES,
    SESSION_LIFETIME_SECONDS,
    UI_MODE_RENAME_VERSION,
    LoggedRequest,
    StripeError,
    StripeStandin,
    build_line_items,
    build_session,
    check_params,
    decode_form,
    main,
    validate_create_params,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "LoggedRequest",
    "StripeError",
    "StripeStandin",
    "decode_form",
    "main",
]
