"""The package's one retry mechanism: attempts, exponential backoff and a deadline around one call.

Who retries with it (each caller keeps its own policy: which errors retry, the delays, the budget, and the
error it raises when the budget is spent):

- ``bronze.consumer.watermarks``: a partition's watermarks while its leader is elected (transient Kafka errors,
  0.1 s doubling to 1 s, until the timeout);
- ``bronze.loader.BronzeLoader``: a lost database connection (0.5 s doubling to 5 s, for ``db_retry_seconds``);
- ``dummyjson.client.DummyJSONClient``: one page (429/5xx/timeouts/bad bodies; full jitter, ``Retry-After``,
  ``max_attempts`` and the fetch's ``time_budget``) and the whole collection when its pages disagree
  (``max_restarts``).

It runs on tenacity (installed with Airflow): tenacity calls, sleeps and decides; this module gives the callers
the one rule they share and tenacity does not offer with an injected clock: *no retry whose wait would end after
the deadline*. tenacity's time-based stops (``stop_after_delay``, ``stop_before_delay``) measure from its own
``time.monotonic()`` start; the DummyJSON client measures its ``time_budget`` on an injected ``clock`` (the tests
run Retry-After: 100 on a fake clock that sleeping advances), so the deadline is an absolute value of the
caller's clock, checked here in tenacity's ``stop`` hook after the next wait is known. The caller's ``sleep`` is
tenacity's ``sleep``.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

T = TypeVar("T")

OUT_OF_ATTEMPTS = "attempts"
OUT_OF_TIME = "deadline"


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as the hooks of :func:`call` see it."""

    attempt: int  # the attempt that failed, 1-based
    error: BaseException
    delay: float  # the wait before the next attempt (0.0 when the attempts ran out: no delay is drawn)
    remaining: float | None  # seconds left before the deadline when the delay was known; None: no deadline
    out_of: str | None = None  # why no attempt follows: OUT_OF_ATTEMPTS or OUT_OF_TIME; None: one follows


def exponential_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """The wait after failed attempt ``attempt`` (1-based): ``min(cap, base * 2**(attempt-1))``, or with ``rng``
    full jitter, a uniform draw between 0 and that."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling if rng is None else rng.uniform(0.0, ceiling)


def call(
    fn: Callable[[int], T],
    *,
    retry_if: type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool],
    wait: Callable[[int, BaseException], float],
    max_attempts: int | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    before_sleep: Callable[[Failure], None] | None = None,
    give_up: Callable[[Failure], BaseException] | None = None,
) -> T:
    """``fn(attempt)`` (attempt 1, 2, ...) until it returns; its errors that ``retry_if`` accepts are retried.

    - ``retry_if``: an exception type (or a tuple of them), or a predicate; any other error is raised at once.
    - ``wait(attempt, error)``: the seconds to wait after that failed attempt (see :func:`exponential_delay`).
      Not called when ``max_attempts`` ran out, so a jittered wait draws nothing from the caller's rng then.
    - ``max_attempts``: attempts in all (None: bounded by the deadline only).
    - ``deadline``: a value of ``clock()``; a retry whose wait would end after it is not made (checked before
      sleeping, so a spent budget fails at once instead of sleeping for nothing).
    - ``before_sleep(failure)``: called before each wait (log lines, counters).
    - ``give_up(failure)``: returns the error to raise when no attempt follows (``failure.out_of`` says why);
      without it the last error is raised as it is.
    """
    if max_attempts is None and deadline is None:
        raise ValueError("retry.call needs max_attempts or a deadline: an unbounded retry never gives up")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts!r}")

    def out_of_attempts(rs: tenacity.RetryCallState) -> bool:
        return max_attempts is not None and rs.attempt_number >= max_attempts

    def next_wait(rs: tenacity.RetryCallState) -> float:
        return 0.0 if out_of_attempts(rs) else wait(rs.attempt_number, rs.outcome.exception())

    def failure(rs: tenacity.RetryCallState) -> Failure:
        remaining = None if deadline is None else deadline - clock()
        out_of = None
        if out_of_attempts(rs):
            out_of = OUT_OF_ATTEMPTS
        elif remaining is not None and rs.upcoming_sleep > remaining:
            out_of = OUT_OF_TIME
        return Failure(rs.attempt_number, rs.outcome.exception(), rs.upcoming_sleep, remaining, out_of)

    last: list[Failure] = []  # the stop hook's verdict, read by the hooks that follow it

    def stop(rs: tenacity.RetryCallState) -> bool:
        last[:] = [failure(rs)]
        return last[0].out_of is not None

    def on_sleep(rs: tenacity.RetryCallState) -> None:
        if before_sleep is not None:
            before_sleep(last[0])

    def on_give_up(rs: tenacity.RetryCallState) -> T:
        raise give_up(last[0]) if give_up is not None else last[0].error

    if isinstance(retry_if, type) or isinstance(retry_if, tuple):
        retry = tenacity.retry_if_exception_type(retry_if)
    else:
        retry = tenacity.retry_if_exception(retry_if)
    attempts = itertools.count(1)
    retrying = tenacity.Retrying(retry=retry, wait=next_wait, stop=stop, before_sleep=on_sleep,
                                 sleep=lambda seconds: sleep(float(seconds)),  # tenacity passes a float subclass
                                 retry_error_callback=on_give_up)
    return retrying(lambda: fn(next(attempts)))
