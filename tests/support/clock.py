"""A monotonic clock moved by hand, for the rate limiter's pauses and sweeps."""

from __future__ import annotations

import time
from types import SimpleNamespace

from common import ratelimit


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def hold_ratelimit_clock(monkeypatch) -> Clock:
    """common.ratelimit's monotonic clock, moved by hand; the event loop and the Redis client keep the real one."""
    clock = Clock()
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=clock, time=time.time))
    return clock
