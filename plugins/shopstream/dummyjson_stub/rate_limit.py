"""The fixed-window rate limit of DummyJSON: ``limit`` requests per ``window`` seconds per client key.

DummyJSON allows 100 requests per 10 s per client IP and answers 429 with ``Retry-After`` and the body
``{"message": RATE_LIMIT_MESSAGE}`` beyond that (CONTRACT.md); every response carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``. The window is fixed (all counters reset together at the
window's end), not sliding, as the real service behaves. The HTTP handler asks :meth:`hit` once per data
request; the admin endpoints are never limited.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

RATE_LIMIT_MESSAGE = "request limit exceeded, please wait a few seconds"


class FixedWindowRateLimit:
    """``limit`` requests per ``window`` seconds per client key; every counter resets together."""

    def __init__(self, limit: int, window: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.limit = int(limit)
        self.window = float(window)
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._t0 = self._clock()
            self._index = 0
            self._counts: dict[str, int] = {}

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = self._clock()
            index = int((now - self._t0) // self.window)
            if index != self._index:
                self._index = index
                self._counts.clear()
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            reset_at = self._t0 + (index + 1) * self.window
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - count)),
            "X-RateLimit-Reset": str(math.ceil(reset_at)),
        }
        return count <= self.limit, headers
