"""Per-client-IP request limits, counted with the `limits` library.

The default storage is this instance's memory, which is enough to blunt a
script hammering one instance; `RATE_LIMIT_STORAGE_URI=redis://…` (e.g.
Memorystore) shares the counts across instances.
"""

from __future__ import annotations

import functools
import math
import time

import flask
from limits import parse_many, storage, strategies

from common.errors import HttpError, SettingError
from common.http import client_ip
from common.settings import Settings


@functools.cache
def _limiter(storage_uri: str) -> strategies.MovingWindowRateLimiter:
    try:
        backend = storage.storage_from_string(storage_uri)
    except Exception as error:  # limits raises several types for a bad or unusable URI
        raise SettingError("RATE_LIMIT_STORAGE_URI", f"is not a usable storage URI ({error.__class__.__name__})")
    return strategies.MovingWindowRateLimiter(backend)


@functools.cache
def _items(setting: str, value: str):
    try:
        return tuple(parse_many(value))
    except ValueError:
        raise SettingError(setting, "must be a rate like 10/minute (several may be joined with ;)")


def check(request: flask.Request, settings: Settings, scope: str, setting: str, value: str) -> None:
    """Count this request against its client's limit; 429 once it is spent."""
    limiter = _limiter(settings.rate_limit_storage_uri)
    key = client_ip(request, settings.trusted_proxy_hops)
    for item in _items(setting, value):
        if not limiter.hit(item, scope, key):
            reset_at = limiter.get_window_stats(item, scope, key).reset_time
            retry_after = max(1, math.ceil(reset_at - time.time()))
            raise HttpError(429, "Too many requests; slow down and retry later.", {"Retry-After": str(retry_after)})
