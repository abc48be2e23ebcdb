"""shopstream.retry: the attempts, waits, deadline and give-up rules that the loader and the DummyJSON client use.

A fake clock that sleeping advances: no test waits for real.
"""

from __future__ import annotations

import random

import pytest
from shopstream import retry

from tests.support.fake_clock import FakeClock


class Flaky(Exception):
    pass


def failing(times: int, error: type[BaseException] = Flaky, result: str = "ok"):
    """fn(attempt) that fails the first `times` attempts; records the attempt numbers it saw."""
    seen: list[int] = []

    def fn(attempt: int) -> str:
        seen.append(attempt)
        if len(seen) <= times:
            raise error(f"attempt {attempt}")
        return result

    return fn, seen


def test_returns_after_retrying_with_the_waits_and_attempt_numbers():
    clock = FakeClock(100.0)
    fn, seen = failing(3)
    assert retry.call(fn, retry_if=Flaky, wait=lambda n, _: retry.exponential_delay(n, 0.1, 1.0),
                      max_attempts=5, clock=clock.time, sleep=clock.sleep) == "ok"
    assert seen == [1, 2, 3, 4]
    assert clock.sleeps == [0.1, 0.2, 0.4]
    assert all(type(s) is float for s in clock.sleeps)


def test_other_errors_are_raised_at_once():
    clock = FakeClock(100.0)
    fn, seen = failing(1, error=KeyError)
    with pytest.raises(KeyError):
        retry.call(fn, retry_if=Flaky, wait=lambda n, _: 1.0, max_attempts=5, clock=clock.time, sleep=clock.sleep)
    assert seen == [1] and clock.sleeps == []


def test_predicate_decides_which_errors_retry():
    clock = FakeClock(100.0)
    fn, seen = failing(5)
    with pytest.raises(Flaky, match="attempt 2"):
        retry.call(fn, retry_if=lambda exc: str(exc) != "attempt 2", wait=lambda n, _: 1.0, max_attempts=9,
                   clock=clock.time, sleep=clock.sleep)
    assert seen == [1, 2] and clock.sleeps == [1.0]


def test_out_of_attempts_raises_the_last_error_without_drawing_a_wait():
    clock = FakeClock(100.0)
    waits: list[int] = []
    fn, seen = failing(10)

    def wait(n, exc):
        waits.append(n)
        return 0.5

    with pytest.raises(Flaky, match="attempt 3"):
        retry.call(fn, retry_if=Flaky, wait=wait, max_attempts=3, clock=clock.time, sleep=clock.sleep)
    assert seen == [1, 2, 3] and waits == [1, 2] and clock.sleeps == [0.5, 0.5]


def test_a_wait_past_the_deadline_is_not_slept():
    clock = FakeClock(100.0)
    fn, seen = failing(10)
    with pytest.raises(Flaky, match="attempt 3"):
        retry.call(fn, retry_if=Flaky, wait=lambda n, _: 2.0, deadline=clock.now + 5.0,
                   clock=clock.time, sleep=clock.sleep)
    assert seen == [1, 2, 3] and clock.sleeps == [2.0, 2.0]  # 4 s slept; a third wait would end at 6 s


def test_time_spent_in_the_attempts_counts_against_the_deadline():
    clock = FakeClock(100.0)

    def slow(attempt):
        clock.now += 3.0
        raise Flaky(f"attempt {attempt}")

    with pytest.raises(Flaky, match="attempt 2"):
        retry.call(slow, retry_if=Flaky, wait=lambda n, _: 1.0, deadline=clock.now + 6.5,
                   clock=clock.time, sleep=clock.sleep)
    assert clock.sleeps == [1.0]


def test_hooks_see_each_failure_and_give_up_chooses_the_error():
    clock = FakeClock(100.0)
    fn, _ = failing(10)
    slept: list[retry.Failure] = []
    gave_up: list[retry.Failure] = []

    def give_up(failure):
        gave_up.append(failure)
        return RuntimeError(f"gave up ({failure.out_of}) after attempt {failure.attempt}: {failure.error}")

    with pytest.raises(RuntimeError, match=r"gave up \(attempts\) after attempt 3: attempt 3"):
        retry.call(fn, retry_if=Flaky, wait=lambda n, _: float(n), max_attempts=3, deadline=clock.now + 100,
                   clock=clock.time, sleep=clock.sleep, before_sleep=slept.append, give_up=give_up)
    assert [(f.attempt, f.delay, f.remaining, f.out_of) for f in slept] == [(1, 1.0, 100.0, None),
                                                                           (2, 2.0, 99.0, None)]
    assert [(f.attempt, f.delay, f.remaining, f.out_of) for f in gave_up] == [(3, 0.0, 97.0, "attempts")]
    assert isinstance(gave_up[0].error, Flaky)

    gave_up.clear()
    fn, _ = failing(10)
    with pytest.raises(RuntimeError, match=r"gave up \(deadline\) after attempt 2"):
        retry.call(fn, retry_if=Flaky, wait=lambda n, _: 4.0, max_attempts=9, deadline=clock.now + 6,
                   clock=clock.time, sleep=clock.sleep, give_up=give_up)
    assert [(f.attempt, f.delay, f.remaining, f.out_of) for f in gave_up] == [(2, 4.0, 2.0, "deadline")]


def test_wait_gets_the_error_of_the_failed_attempt():
    clock = FakeClock(100.0)
    fn, _ = failing(2)
    errors: list[str] = []
    retry.call(fn, retry_if=Flaky, wait=lambda n, exc: errors.append(str(exc)) or 0.0, max_attempts=3,
               clock=clock.time, sleep=clock.sleep)
    assert errors == ["attempt 1", "attempt 2"]


def test_exponential_delay_caps_and_jitters():
    assert [retry.exponential_delay(n, 0.5, 5.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    rng = random.Random(3)
    draws = [retry.exponential_delay(n, 0.5, 4.0, rng) for n in range(1, 7)]
    assert all(0 <= d <= c for d, c in zip(draws, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0], strict=True))
    assert len(set(draws)) == 6


def test_an_unbounded_retry_is_refused():
    with pytest.raises(ValueError, match="max_attempts or a deadline"):
        retry.call(lambda n: None, retry_if=Flaky, wait=lambda n, _: 1.0)
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        retry.call(lambda n: None, retry_if=Flaky, wait=lambda n, _: 1.0, max_attempts=0)
