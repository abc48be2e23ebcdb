"""A clock that sleeping advances at once: retry waits, Retry-After headers and rate-limit windows cost no real
time. Pass `clock.time` as the clock and `clock.sleep` as the sleep of the code under test (shopstream.retry, the
DummyJSON client, the DummyJSON stub's rate limiter). Thread-safe: the stub serves requests from threads."""

from __future__ import annotations

import threading


class FakeClock:
    """time()/sleep() pair starting at `start`; `sleeps` lists every sleep asked for, `advance` moves time on."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
