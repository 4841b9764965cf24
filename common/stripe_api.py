"""The calls this service makes to Stripe, through one shared `StripeClient`.

Each call answers Stripe's JSON object as a plain dict, and each failure
becomes one of our domain errors (`common.errors`), so no caller handles
Stripe's exception classes and no HTTP status is decided here.
"""

from __future__ import annotations

from urllib.parse import quote

import stripe

from common.errors import (
    IdempotencyConflict,
    NotFound,
    ProviderBusy,
    ProviderRefused,
    ProviderUnavailable,
    SettingError,
)
from common.stripe_http import PooledAsyncClient
from common.stripe_rules import API_VERSION, key_mode

MAX_NETWORK_RETRIES = 2


class StripeApi:
    """One instance's Stripe client: pinned API version, retries, pooled connections."""

    def __init__(self, secret_key: str, api_base: str | None = None, http_client: stripe.HTTPClient | None = None):
        self.mode = key_mode(secret_key)
        self.http_client = http_client or PooledAsyncClient()
        # StripeClient retries nothing unless told to; retried POSTs are safe
        # because the SDK gives each one an idempotency key.
        self.client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=MAX_NETWORK_RETRIES,
            http_client=self.http_client,
        )

    async def create_checkout_session(self, params: dict, idempotency_key: str | None = None) -> dict:
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        return await self._call("post", "/v1/checkout/sessions", {**params, **options})

    async def retrieve_checkout_session(self, session_id: str) -> dict:
        """The session with its PaymentIntent expanded: a failed delayed payment shows only there."""
        return await self._call(
            "get",
            f"/v1/checkout/sessions/{quote(session_id, safe='')}",
            {"expand": ["payment_intent"]},
            not_found="No such checkout session.",
        )

    async def list(self, path: str, params: dict) -> dict:
        """One page of a Stripe list (`data`, `has_more`)."""
        return await self._call("get", path, params)

    async def close(self) -> None:
        await self.http_client.close_async()

    async def _call(self, method: str, path: str, params: dict, not_found: str | None = None) -> dict:
        """One API call, answered as plain JSON.

        `raw_request_async` takes the same road as `client.v1.…` (pinned
        version, key, idempotency keys, retries, Stripe's error classes) but
        skips building a StripeObject tree from the answer: for a Checkout
        Session that cost ~0.4 ms of CPU per call, and callers read a few
        fields. Request options (idempotency_key) travel among the params.
        """
        try:
            response = await self.client.raw_request_async(method, path, **params)
        except stripe.StripeError as error:
            raise translate(error, not_found) from error
        return response.data


def translate(error: stripe.StripeError, not_found: str | None = None) -> Exception:
    """Our domain error for a Stripe failure. Stripe's message is not passed on: it describes our request."""
    request_id = error.request_id
    if isinstance(error, stripe.IdempotencyError):
        return IdempotencyConflict("idempotency key reused with another request", request_id)
    if isinstance(error, stripe.RateLimitError):
        return ProviderBusy("Stripe is rate limiting this account", request_id)
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return SettingError("STRIPE_SECRET_KEY", "was rejected by Stripe")
    if isinstance(error, stripe.InvalidRequestError):
        if error.http_status == 404 and not_found:
            return NotFound(not_found)
        return ProviderRefused(f"Stripe refused our request ({error.code or 'invalid_request'})", request_id)
    return ProviderUnavailable(f"Stripe failed or is unreachable ({error.__class__.__name__})", request_id)
