"""DummyJSONClient against the embedded server: round trips, every fault, budgets, rate limiting.

Real HTTP on 127.0.0.1 (port 0). Sleeping is injected (a fake clock), so Retry-After: 10 or a rate-limit
wait costs no real time.
"""

from __future__ import annotations

import json
import random

import pytest
from shopstream.dummyjson.client import (
    DummyJSONClient,
    DummyJSONError,
    HTTPStatusError,
    InconsistentDataError,
    MalformedResponseError,
    RateLimiter,
    RetryBudgetExhausted,
)
from shopstream.dummyjson_stub.catalog import generate_catalog
from shopstream.dummyjson_stub.server import DummyJSONServer

from tests.support.fake_clock import FakeClock


@pytest.fixture(scope="module")
def raw_files(snapshot_path):
    """The JSON files exactly as published (not through our loader)."""
    return {r: json.loads((snapshot_path / f"{r}.json").read_text(encoding="utf-8"))
            for r in ("users", "products", "carts")}


@pytest.fixture
def srv(server):
    server.clear_faults()
    server.reset()
    yield server
    server.clear_faults()


def make_client(url: str, clock: FakeClock | None = None, **kw) -> DummyJSONClient:
    clock = clock or FakeClock()
    kw.setdefault("timeout", 5.0)
    kw.setdefault("rng", random.Random(1))
    return DummyJSONClient(url, sleep=clock.sleep, clock=clock.time, wall_clock=clock.time, **kw)


# --------------------------------------------------------------------------------- round trips
def test_snapshot_round_trips_without_loss(srv, raw_files):
    client = make_client(srv.url)
    for resource, expected in raw_files.items():
        got = client.fetch_all(resource)
        assert got == expected
        # Byte-level too: same keys in the same order, same numbers (e.g. 99.94999999999999, 1111).
        assert json.dumps(got) == json.dumps(expected)
    assert client.stats["requests"] == 8  # 3 + 2 + 3 pages of 100
    assert client.stats["retries"] == 0 and client.stats["pages"] == 8 and client.stats["records"] == 610
    assert client.last_fetch_stats["resource"] == "carts" and client.last_fetch_stats["requests"] == 3


def test_small_pages_and_exact_multiples(srv, raw_files):
    client = make_client(srv.url, page_size=7)
    assert client.fetch_all("products") == raw_files["products"]
    assert client.last_fetch_stats["requests"] == 28  # ceil(194 / 7)
    assert client.fetch_all("users", page_size=104) == raw_files["users"]
    assert client.last_fetch_stats["requests"] == 2  # 208 = 2 x 104: no extra empty page


def test_generated_catalogue_round_trips():
    catalog = generate_catalog(users=333, products=250, carts=410, seed=9)
    with DummyJSONServer(catalog, rate_limit=None) as url:
        client = make_client(url, page_size=64)
        for resource in ("users", "products", "carts"):
            assert client.fetch_all(resource) == catalog[resource]


def test_empty_collection():
    with DummyJSONServer(generate_catalog(users=0, products=0, carts=0), rate_limit=None) as url:
        client = make_client(url)
        assert client.fetch_all("users") == []
        assert client.last_fetch_stats["requests"] == 1


# ---------------------------------------------------------------------- transient faults recover
TRANSIENT = {
    "429 burst": ([{"fault": "429", "first": 3, "retry_after": 7}], "http_429"),
    "503 on the 2nd request": ([{"fault": "503", "on": [2]}], "http_5xx"),
    "5xx at a rate": ([{"fault": "500", "rate": 0.4, "seed": 3}], "http_5xx"),
    "timeout": ([{"fault": "slow", "on": [2], "seconds": 1.5}], "timeout"),
    "connection drop": ([{"fault": "drop", "on": [1, 3]}], "connection"),
    "truncated body (cut)": ([{"fault": "truncate", "on": [2]}], "truncated_body"),
    "truncated body (short length)": ([{"fault": "truncate", "on": [2], "mode": "short"}], "truncated_body"),
    "html instead of json": ([{"fault": "html", "on": [1]}], "invalid_json"),
    "wrong envelope key": ([{"fault": "envelope", "on": [2]}], "malformed"),
    "total as a string": ([{"fault": "envelope", "variant": "total_type", "on": [1]}], "malformed"),
    "limit != items": ([{"fault": "envelope", "variant": "limit_mismatch", "on": [2]}], "malformed"),
    "skip not echoed": ([{"fault": "envelope", "variant": "skip_mismatch", "on": [3]}], "malformed"),
    "missing id": ([{"fault": "missing_id", "on": [2], "index": 7}], "malformed"),
    "duplicate id in a page": ([{"fault": "duplicate_id", "on": [1]}], "malformed"),
    "inconsistent total": ([{"fault": "total", "on": [2]}], "inconsistent"),
    "inconsistent total on page 1": ([{"fault": "total", "on": [1], "delta": -3}], "inconsistent"),
}


@pytest.mark.parametrize("name", list(TRANSIENT))
def test_transient_fault_is_retried_and_recovered(srv, raw_files, name):
    rules, kind = TRANSIENT[name]
    srv.set_faults(rules)
    read_timeout = 0.4 if kind == "timeout" else 10.0  # only the timeout case needs a short one
    client = make_client(srv.url, timeout=(2.0, read_timeout), max_attempts=5)
    assert client.fetch_all("users") == raw_files["users"]
    stats = client.last_fetch_stats
    assert stats["failures"].get(kind, 0) >= 1, stats
    assert stats["retries"] + stats["restarts"] >= 1
    assert stats["requests"] > 3  # more than the 3 clean pages
    assert sum(r["fired"] for r in srv.faults.describe()) >= 1


def test_retry_after_is_honoured(srv, raw_files):
    srv.set_faults([{"fault": "429", "first": 2, "retry_after": 7}])
    clock = FakeClock()
    client = make_client(srv.url, clock, backoff_base=0.1)
    assert client.fetch_all("products") == raw_files["products"]
    assert client.last_fetch_stats["failures"] == {"http_429": 2}
    assert len(clock.sleeps) == 2 and all(7.0 <= s <= 7.1 for s in clock.sleeps)


def test_backoff_is_exponential_with_full_jitter(srv):
    srv.set_faults([{"fault": "503"}])
    clock = FakeClock()
    client = make_client(srv.url, clock, max_attempts=7, backoff_base=0.5, backoff_cap=4.0,
                         rng=random.Random(5))
    with pytest.raises(RetryBudgetExhausted):
        client.fetch_all("users")
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(clock.sleeps) == 6
    assert all(0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))
    assert clock.sleeps != sorted(clock.sleeps) or len(set(clock.sleeps)) == 6  # jittered, not constant


# ---------------------------------------------------------------------------- budgets exhausted
EXHAUSTED = {
    "503": ([{"fault": "503"}], "HTTP 503"),
    "429": ([{"fault": "429", "retry_after": 1}], "HTTP 429"),
    "timeout": ([{"fault": "slow", "seconds": 1.5}], "timed out"),
    "drop": ([{"fault": "drop"}], "connection error"),
    "truncated": ([{"fault": "truncate", "mode": "short"}], "truncated JSON body"),
    "truncated (cut)": ([{"fault": "truncate"}], "truncated response body"),
    "envelope": ([{"fault": "envelope"}], "envelope has no 'users' list"),
    "missing id": ([{"fault": "missing_id", "index": 4}], "item #4 has no int 'id'"),
}


@pytest.mark.parametrize("name", list(EXHAUSTED))
def test_exhausted_budget_names_endpoint_page_and_cause(srv, name):
    rules, cause = EXHAUSTED[name]
    srv.set_faults([{**rules[0], "query": {"skip": "100"}}])  # page 2 is broken for good
    client = make_client(srv.url, timeout=(2.0, 0.4 if name == "timeout" else 10.0), max_attempts=3)
    with pytest.raises(RetryBudgetExhausted) as err:
        client.fetch_all("users")
    message = str(err.value)
    assert f"{srv.url}/users?limit=100&skip=100" in message
    assert "skip=100 limit=100" in message
    assert cause in message and "after 3 attempt(s)" in message
    assert err.value.skip == 100 and err.value.limit == 100 and err.value.attempts == 3
    assert isinstance(err.value, DummyJSONError) and isinstance(err.value.last_error, DummyJSONError)
    assert client.last_fetch_stats["requests"] == 1 + 3  # page 1, then 3 attempts at page 2
    assert client.last_fetch_stats["records"] == 0  # no partial data


def test_malformed_last_error_is_typed(srv):
    srv.set_faults([{"fault": "missing_id"}])
    with pytest.raises(RetryBudgetExhausted) as err:
        make_client(srv.url, max_attempts=2).fetch_all("carts")
    assert isinstance(err.value.last_error, MalformedResponseError)
    assert err.value.kind == "malformed"


def test_time_budget_stops_retries_early(srv):
    srv.set_faults([{"fault": "429", "retry_after": 100}])
    clock = FakeClock()
    client = make_client(srv.url, clock, max_attempts=10, time_budget=30)
    with pytest.raises(RetryBudgetExhausted) as err:
        client.fetch_all("products")
    assert "30 s time budget" in str(err.value) and "skip=0 limit=100" in str(err.value)
    assert client.last_fetch_stats["requests"] == 1 and clock.sleeps == []


def test_persistent_inconsistency_raises_after_restarts(srv):
    srv.set_faults([{"fault": "total", "every": 2}])  # every other page reports 209 instead of 208
    client = make_client(srv.url, max_restarts=2)
    with pytest.raises(InconsistentDataError) as err:
        client.fetch_all("users")
    message = str(err.value)
    assert "'total' changed between pages" in message and "after 2 full re-fetch(es)" in message
    assert "skip=0" in message or "skip=100" in message
    assert client.last_fetch_stats["restarts"] == 2 and client.last_fetch_stats["requests"] == 6


def test_total_that_disagrees_with_the_data_is_a_clear_error(srv):
    srv.set_faults([{"fault": "total", "after": 1}])  # from the 2nd request on, total says 209 (data: 208)
    with pytest.raises(DummyJSONError) as err:
        make_client(srv.url, max_attempts=2).fetch_all("users")
    assert "total=209" in str(err.value) and "page holds 8 items, expected 9" in str(err.value)
    assert "skip=200 limit=100" in str(err.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retried(srv, status):
    srv.set_faults([{"fault": "status", "status": status, "message": "nope"}])
    client = make_client(srv.url)
    with pytest.raises(HTTPStatusError) as err:
        client.fetch_all("users")
    assert err.value.status == status and f"HTTP {status} (not retried): nope" in str(err.value)
    assert f"GET {srv.url}/users?limit=100&skip=0" in str(err.value)
    assert client.last_fetch_stats["requests"] == 1


def test_connection_refused_is_retried_then_clear():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = make_client(f"http://127.0.0.1:{port}", max_attempts=2)
    with pytest.raises(RetryBudgetExhausted, match="connection error"):
        client.fetch_all("products")
    assert client.stats["requests"] == 2 and client.stats["retries"] == 1


def test_unknown_resource_and_bad_settings():
    with pytest.raises(ValueError, match="unknown DummyJSON resource"):
        DummyJSONClient("http://127.0.0.1:1").fetch_all("todos")
    with pytest.raises(ValueError):
        DummyJSONClient("127.0.0.1:1")
    with pytest.raises(ValueError):
        DummyJSONClient("http://x", page_size=0)


# --------------------------------------------------------------------------------- rate limiting
def max_in_any_window(starts: list[float], period: float) -> int:
    """Most request starts in any half-open window [t, t + period) (the server's windows are half-open)."""
    return max(sum(1 for u in starts if t <= u < t + period) for t in starts)


def test_rate_limiter_keeps_at_most_100_per_10_seconds():
    clock = FakeClock(0.0)
    limiter = RateLimiter(100, 10.0, clock=clock.time, sleep=clock.sleep)
    starts = []
    for n in range(350):
        limiter.acquire()
        starts.append(clock.time())
        clock.now += 0.001 if n % 50 else 0.7  # bursts with some gaps
    assert max_in_any_window(starts, 10.0) == 100
    assert starts[-1] >= 30.0  # 350 requests need at least 3 full windows of waiting
    assert limiter.waits > 0


def test_client_never_trips_the_server_limit(snapshot):
    """Same fake clock on both sides: 208 one-record pages against a 100 per 10 s server, no 429."""
    clock = FakeClock()
    with DummyJSONServer(snapshot, rate_limit=100, rate_window=10, clock=clock.time) as url:
        client = make_client(url, clock, page_size=1, rate_limit=100, rate_period=10)
        assert len(client.fetch_all("users")) == 208
    stats = client.last_fetch_stats
    assert stats["requests"] == 208 and stats["status_codes"] == {"200": 208}
    assert stats["throttle_waits"] >= 2 and clock.now - 1_000_000 >= 20


def test_without_a_client_limit_the_server_429s_are_absorbed(snapshot):
    clock = FakeClock()
    with DummyJSONServer(snapshot, rate_limit=100, rate_window=10, clock=clock.time) as url:
        client = make_client(url, clock, page_size=1, rate_limit=None)
        assert len(client.fetch_all("products")) == 194
    stats = client.last_fetch_stats
    assert stats["status_codes"]["429"] >= 1 and stats["failures"]["http_429"] >= 1
    assert stats["status_codes"]["200"] == 194


def test_server_rate_headers_are_honoured(snapshot):
    """A server limit smaller than ours: X-RateLimit-Limit/Remaining/Reset keep us under it."""
    clock = FakeClock()
    with DummyJSONServer(snapshot, rate_limit=5, rate_window=10, clock=clock.time) as url:
        client = make_client(url, clock, page_size=20, rate_limit=100)
        assert len(client.fetch_all("users")) == 208
    stats = client.last_fetch_stats
    assert stats["requests"] == 11 and "429" not in stats["status_codes"]
    assert client.limiter.max_requests == 5 and stats["throttle_seconds"] >= 10
