"""The service's domain errors: what went wrong, in words, with no HTTP in them.

Lower layers (settings, secrets, Stripe calls, stores, rate limits, input
checks) raise these. Only `common.http` knows which status, message and
headers each one becomes.
"""

from __future__ import annotations


class InvalidRequest(Exception):
    """The caller sent something we refuse; the message says what to fix and quotes no input at length."""


class NotFound(Exception):
    """The thing asked for does not exist (an unknown Checkout Session)."""


class Unauthenticated(Exception):
    """The caller did not prove who it is (a missing or invalid App Check token)."""


class RateLimited(Exception):
    """This caller spent its allowance; it may try again after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


class CheckUnavailable(Exception):
    """A check every request must pass could not be made (rate-limit counts or App Check keys unreachable).

    Nobody's fault: the caller may retry after `retry_after` seconds.
    """

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class SettingError(Exception):
    """A setting is missing or invalid: the operator must fix the deployment.

    The message names the setting and never quotes its value, which may be a
    secret.
    """

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name} {problem}")
        self.name = name
        self.problem = problem


class ProviderError(Exception):
    """Stripe could not do what we asked. `request_id` is Stripe's, for its logs and support."""

    def __init__(self, message: str, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


class ProviderUnavailable(ProviderError):
    """Stripe failed or could not be reached, after the SDK's retries."""


class ProviderBusy(ProviderError):
    """Stripe is rate limiting this account."""


class IdempotencyConflict(ProviderError):
    """An idempotency key was reused with a different request."""


class ProviderRefused(ProviderError):
    """Stripe refused a request we built: a bug on our side, not the caller's."""
