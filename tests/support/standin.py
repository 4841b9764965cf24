"""A stripe SDK client for the stand-in's own tests: the SDK's default transport, no retries, pinned version."""

from __future__ import annotations

import stripe


def sdk_client(server, key: str, version: str | None = None) -> stripe.StripeClient:
    """A client that gives up at the first failure, so a hidden SDK retry cannot pass a test."""
    return stripe.StripeClient(
        key,
        base_addresses={"api": server.base_url},
        max_network_retries=0,
        stripe_version=version,
        http_client=stripe.RequestsClient(timeout=5),
    )
