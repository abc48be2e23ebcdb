"""DummyJSON read client: full, validated extraction of /users, /products and /carts.

Plain Python + requests (no Airflow import), so it runs in tests, benchmarks and any task.

``DummyJSONClient.fetch_all(resource)`` pages through a collection with ``limit``/``skip`` and returns
every record (a list of dicts in ``id`` order) or raises a :class:`DummyJSONError`; it never returns
partial data. Each page is validated against the envelope contract (see the DummyJSON CONTRACT.md):

* HTTP 200, a JSON object body, ``{<resource>: [..], "total": int, "skip": int, "limit": int}``;
* ``skip`` echoes the requested skip, ``limit`` equals the number of items returned, and the page is
  full (``min(page_size, total - skip)`` items);
* every item is an object with an int ``id``; no id is seen twice; ``total`` is the same on every page;
  at the end the number of records equals ``total``.

Failures and what happens to them:

====================================================  ===============================================
429 (honours ``Retry-After``), 5xx, timeouts,          retried with exponential backoff + full jitter,
connection errors, truncated / non-JSON bodies,        bounded by ``max_attempts`` per request and by
malformed envelopes or items (wrong keys, missing id)  ``time_budget`` seconds per fetch; then
                                                       :class:`RetryBudgetExhausted`
``total`` changes between pages, duplicate ids,        the whole collection is fetched again (up to
record count != total                                  ``max_restarts`` times); then
                                                       :class:`InconsistentDataError`
other 4xx (400, 404, ...)                              not retried: :class:`HTTPStatusError`
====================================================  ===============================================

Every error message names the endpoint URL, the page (skip/limit) and the cause. Both retries (a page, the
whole collection) run on :mod:`shopstream.retry`, the package's one retry mechanism.

Client-side rate limiting: a sliding-window limiter keeps at most ``rate_limit`` requests in any
``rate_period`` seconds (default 100 per 10 s, DummyJSON's documented limit). When the server reports
``X-RateLimit-Remaining: 0`` the client also waits for ``X-RateLimit-Reset``, and adopts a smaller
``X-RateLimit-Limit`` if the server announces one.

``sleep``, ``clock`` (monotonic), ``wall_clock`` (epoch, for ``X-RateLimit-Reset``) and ``rng`` are
injectable so tests run without real waiting. ``client.stats`` holds cumulative counters and
``client.last_fetch_stats`` those of the latest ``fetch_all`` call.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from shopstream import retry

log = logging.getLogger(__name__)

RESOURCES: tuple[str, ...] = ("users", "products", "carts")
DEFAULT_BASE_URL = "https://dummyjson.com"
DEFAULT_PAGE_SIZE = 100
DEFAULT_USER_AGENT = "shopstream-extract/1 (+python-requests)"

# Failure kinds (keys of stats["failures"]).
KIND_429 = "http_429"
KIND_5XX = "http_5xx"
KIND_TIMEOUT = "timeout"
KIND_CONNECTION = "connection"
KIND_TRUNCATED = "truncated_body"
KIND_INVALID_JSON = "invalid_json"
KIND_MALFORMED = "malformed"
KIND_INCONSISTENT = "inconsistent"


# --------------------------------------------------------------------------------------------- errors
class DummyJSONError(Exception):
    """Base class: a fetch failed. ``str(err)`` names the endpoint, the page and the cause."""

    def __init__(
        self,
        cause: str,
        *,
        url: str | None = None,
        resource: str | None = None,
        skip: int | None = None,
        limit: int | None = None,
        attempts: int | None = None,
        status: int | None = None,
        kind: str | None = None,
    ) -> None:
        self.cause = cause
        self.url = url
        self.resource = resource
        self.skip = skip
        self.limit = limit
        self.attempts = attempts
        self.status = status
        self.kind = kind
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.url:
            parts.append(f"GET {self.url}")
        if self.skip is not None or self.limit is not None:
            parts.append(f"(page skip={self.skip} limit={self.limit})")
        where = " ".join(parts) or "DummyJSON request"
        tries = f" after {self.attempts} attempt(s)" if self.attempts else ""
        return f"{where} failed{tries}: {self.cause}"


class HTTPStatusError(DummyJSONError):
    """A non-retryable HTTP status (4xx other than 429, or an unexpected 1xx/3xx)."""


class MalformedResponseError(DummyJSONError):
    """The body is not the documented envelope (bad JSON, wrong keys/types, an item without an int id...)."""


class RetryBudgetExhausted(DummyJSONError):
    """Transient failures outlasted ``max_attempts`` for one request or the fetch's ``time_budget``."""

    def __init__(self, cause: str, *, last_error: DummyJSONError | None = None, **kw: Any) -> None:
        self.last_error = last_error
        super().__init__(cause, **kw)


class InconsistentDataError(DummyJSONError):
    """The pages do not add up to one collection (total changed, duplicate ids, count != total)."""


class _Transient(Exception):
    """Internal: one attempt failed in a retryable way."""

    def __init__(self, kind: str, cause: str, retry_after: float | None = None) -> None:
        super().__init__(cause)
        self.kind = kind
        self.cause = cause
        self.retry_after = retry_after


class _Restart(Exception):
    """Internal: the collection changed under us; fetch it again from the start."""

    def __init__(self, cause: str, skip: int, limit: int, url: str) -> None:
        super().__init__(cause)
        self.cause, self.skip, self.limit, self.url = cause, skip, limit, url


# ---------------------------------------------------------------------------------------- rate limit
class RateLimiter:
    """At most ``max_requests`` in any ``period`` seconds (sliding window over request start times).

    A sliding window is stricter than the server's fixed 10 s window, so staying inside it keeps every
    fixed window under the limit too. ``block_until_epoch`` lets the server's own counters
    (X-RateLimit-Remaining/Reset, Retry-After) pause the client further.
    """

    def __init__(
        self,
        max_requests: int = 100,
        period: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests < 1 or period <= 0:
            raise ValueError("RateLimiter needs max_requests >= 1 and period > 0")
        self.max_requests = int(max_requests)
        self.period = float(period)
        self._clock = clock
        self._sleep = sleep
        self._starts: collections.deque[float] = collections.deque()
        self._blocked_until = float("-inf")
        self._lock = threading.Lock()
        self.waits = 0
        self.waited_seconds = 0.0

    def acquire(self) -> float:
        """Wait (via the injected sleep) until one more request is allowed; return the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                while self._starts and self._starts[0] <= now - self.period:
                    self._starts.popleft()
                wait = 0.0
                if len(self._starts) >= self.max_requests:
                    wait = self._starts[0] + self.period - now
                if self._blocked_until > now:
                    wait = max(wait, self._blocked_until - now)
                if wait <= 0:
                    self._starts.append(now)
                    break
                self._sleep(wait)
                waited += wait
            if waited:
                self.waits += 1
                self.waited_seconds += waited
        return waited

    def block_for(self, seconds: float) -> None:
        """No request may start in the next ``seconds`` seconds."""
        if seconds > 0:
            with self._lock:
                self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def shrink(self, max_requests: int) -> None:
        """Adopt a smaller limit announced by the server (never grows)."""
        if 1 <= max_requests < self.max_requests:
            with self._lock:
                self.max_requests = max_requests


# --------------------------------------------------------------------------------------------- client
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _retry_after_seconds(value: str | None, wall_now: float) -> float | None:
    """Parse Retry-After (delta-seconds or HTTP-date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - wall_now)
    except (TypeError, ValueError, IndexError):
        return None


def _new_stats() -> dict[str, Any]:
    return {
        "requests": 0,  # HTTP requests sent (including retries)
        "retries": 0,  # requests re-sent after a transient failure
        "pages": 0,  # pages that passed validation
        "records": 0,  # records returned by successful fetch_all calls
        "restarts": 0,  # whole-collection re-fetches after an inconsistency
        "throttle_waits": 0,  # times the client-side rate limiter made us wait
        "throttle_seconds": 0.0,  # seconds spent in those waits
        "backoff_seconds": 0.0,  # seconds slept between retries
        "failures": {},  # failure kind -> count
        "status_codes": {},  # "200" -> count
    }


class DummyJSONClient:
    """Paginated, validated, rate-limited and retrying reader of the DummyJSON collections.

    ``timeout`` is a float (connect and read) or a ``(connect, read)`` tuple, in seconds.
    ``rate_limit=None`` (or 0) disables the client-side limiter. Thread-safety: one client per thread.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 6,
        time_budget: float = 900.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_restarts: int = 2,
        rate_limit: int | None = 100,
        rate_period: float = 10.0,
        session: requests.Session | None = None,
        headers: dict[str, str] | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url or "://" not in base_url:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        if int(page_size) < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size!r}")
        if int(max_attempts) < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts!r}")
        self.base_url = base_url.rstrip("/")
        self.page_size = int(page_size)
        self.timeout = tuple(timeout) if isinstance(timeout, (tuple, list)) else (float(timeout),) * 2
        self.max_attempts = int(max_attempts)
        self.time_budget = float(time_budget)
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self.max_restarts = int(max_restarts)
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self._rng = rng or random.Random()
        self.limiter = (
            RateLimiter(rate_limit, rate_period, clock=clock, sleep=sleep) if rate_limit else None
        )
        self._own_session = session is None
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": DEFAULT_USER_AGENT}
        )
        if headers:
            self.session.headers.update(headers)
        self.verify = verify
        self.stats: dict[str, Any] = _new_stats()
        self.last_fetch_stats: dict[str, Any] = _new_stats()

    # ------------------------------------------------------------------------------ public API
    def fetch_all(self, resource: str, *, page_size: int | None = None) -> list[dict[str, Any]]:
        """Every record of ``resource`` (users/products/carts) in ``id`` order, or a DummyJSONError."""
        if resource not in RESOURCES:
            raise ValueError(f"unknown DummyJSON resource {resource!r}; expected one of {RESOURCES}")
        size = int(page_size or self.page_size)
        if size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size!r}")
        run = _new_stats()
        started = self._clock()
        deadline = started + self.time_budget
        try:
            records = self._fetch_collection(resource, size, deadline, run)
            run["records"] = len(records)
            return records
        finally:
            run["seconds"] = round(self._clock() - started, 6)
            run["resource"] = resource
            self.last_fetch_stats = run
            self._merge(run)
            log.info(
                "DummyJSON /%s: %d records, %d requests, %d retries, %d restarts, throttled %.2f s, "
                "backoff %.2f s, failures %s",
                resource, run["records"], run["requests"], run["retries"], run["restarts"],
                run["throttle_seconds"], run["backoff_seconds"], run["failures"] or "none",
            )

    def fetch_catalog(self, resources: tuple[str, ...] = RESOURCES) -> dict[str, list[dict[str, Any]]]:
        """``{resource: fetch_all(resource)}`` for each resource."""
        return {r: self.fetch_all(r) for r in resources}

    def page_url(self, resource: str, skip: int, limit: int) -> str:
        return f"{self.base_url}/{resource}?limit={limit}&skip={skip}"

    def reset_stats(self) -> None:
        self.stats = _new_stats()

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> DummyJSONClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ internals
    def _merge(self, run: dict[str, Any]) -> None:
        for key, value in run.items():
            if key in ("failures", "status_codes"):
                for k, v in value.items():
                    self.stats[key][k] = self.stats[key].get(k, 0) + v
            elif key in self.stats and isinstance(value, (int, float)):
                self.stats[key] += value

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**(attempt-1)))."""
        return retry.exponential_delay(attempt, self.backoff_base, self.backoff_cap, self._rng)

    def _fetch_collection(self, resource: str, size: int, deadline: float, run: dict[str, Any]) -> list[dict]:
        """Every record, fetched again from the start (up to ``max_restarts`` times) while the pages disagree."""

        def fetch_pass(attempt: int) -> list[dict]:
            try:
                return self._fetch_pass(resource, size, deadline, run)
            except _Restart:
                run["failures"][KIND_INCONSISTENT] = run["failures"].get(KIND_INCONSISTENT, 0) + 1
                raise

        def before_restart(failure: retry.Failure) -> None:
            run["restarts"] += 1
            log.warning("DummyJSON /%s: %s; re-fetching the collection (restart %d/%d)",
                        resource, failure.error.cause, failure.attempt, self.max_restarts)
            run["backoff_seconds"] += failure.delay

        def give_up(failure: retry.Failure) -> InconsistentDataError:
            exc = failure.error
            if failure.out_of == retry.OUT_OF_ATTEMPTS:
                cause = f"{exc.cause}; still inconsistent after {failure.attempt - 1} full re-fetch(es)"
            else:
                run["restarts"] += 1  # the re-fetch was decided, then refused by the budget: counted as one
                cause = f"{exc.cause}; no time left in the {self.time_budget:g} s budget to re-fetch"
            return InconsistentDataError(cause, url=exc.url, resource=resource, skip=exc.skip, limit=exc.limit,
                                         kind=KIND_INCONSISTENT)

        return retry.call(fetch_pass, retry_if=_Restart, wait=lambda attempt, _: self._backoff(attempt),
                          max_attempts=self.max_restarts + 1, deadline=deadline, clock=self._clock,
                          sleep=self._sleep, before_sleep=before_restart, give_up=give_up)

    def _fetch_pass(self, resource: str, size: int, deadline: float, run: dict[str, Any]) -> list[dict]:
        records: list[dict[str, Any]] = []
        seen: set[int] = set()
        total: int | None = None
        skip = 0
        while True:
            url = self.page_url(resource, skip, size)
            page_total, items = self._get_page(resource, url, skip, size, total, deadline, run)
            if total is None:
                total = page_total
            elif page_total != total:
                raise _Restart(f"'total' changed between pages from {total} to {page_total}", skip, size, url)
            for item in items:
                if item["id"] in seen:
                    raise _Restart(f"id {item['id']} was already returned by an earlier page", skip, size, url)
                seen.add(item["id"])
            records.extend(items)
            run["pages"] += 1
            skip += len(items)
            if skip >= total:
                break
        if len(records) != total:  # pragma: no cover - guarded by the per-page checks
            raise _Restart(f"got {len(records)} records but 'total' is {total}", skip, size, url)
        records.sort(key=lambda r: r["id"])
        return records

    def _get_page(
        self,
        resource: str,
        url: str,
        skip: int,
        limit: int,
        expected_total: int | None,
        deadline: float,
        run: dict[str, Any],
    ) -> tuple[int, list[dict[str, Any]]]:
        def get(attempt: int) -> tuple[int, list[dict[str, Any]]]:
            try:
                body = self._request(resource, url, skip, limit, attempt, run)
                return self._validate(resource, body, skip, limit)
            except _Transient as exc:
                run["failures"][exc.kind] = run["failures"].get(exc.kind, 0) + 1
                raise

        def wait(attempt: int, exc: _Transient) -> float:
            delay = self._backoff(attempt)
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after) + self._rng.uniform(0.0, min(1.0, self.backoff_base))
            return delay

        def before_retry(failure: retry.Failure) -> None:
            run["retries"] += 1
            last = failure.error
            log.warning("DummyJSON GET %s attempt %d/%d failed (%s): %s; retrying in %.2f s",
                        url, failure.attempt, self.max_attempts, last.kind, last.cause, failure.delay)
            run["backoff_seconds"] += failure.delay

        def give_up(failure: retry.Failure) -> RetryBudgetExhausted:
            last = failure.error
            if failure.out_of == retry.OUT_OF_ATTEMPTS:
                cause = f"{last.cause} (kind {last.kind}); gave up after max_attempts={self.max_attempts}"
            else:
                cause = (f"{last.cause} (kind {last.kind}); the next retry in {failure.delay:.2f} s would exceed "
                         f"the {self.time_budget:g} s time budget ({max(0.0, failure.remaining):.2f} s left)")
            return RetryBudgetExhausted(
                cause, url=url, resource=resource, skip=skip, limit=limit, attempts=failure.attempt,
                kind=last.kind, last_error=self._as_error(last, url, resource, skip, limit, failure.attempt))

        return retry.call(get, retry_if=_Transient, wait=wait, max_attempts=self.max_attempts, deadline=deadline,
                          clock=self._clock, sleep=self._sleep, before_sleep=before_retry, give_up=give_up)

    @staticmethod
    def _as_error(exc: _Transient, url: str, resource: str, skip: int, limit: int, attempts: int):
        cls = MalformedResponseError if exc.kind in (KIND_MALFORMED, KIND_INVALID_JSON) else DummyJSONError
        return cls(exc.cause, url=url, resource=resource, skip=skip, limit=limit, attempts=attempts,
                   kind=exc.kind)

    def _request(self, resource: str, url: str, skip: int, limit: int, attempt: int, run: dict) -> Any:
        if self.limiter is not None:
            before = self.limiter.waited_seconds
            waited = self.limiter.acquire()
            if waited:
                run["throttle_waits"] += 1
                run["throttle_seconds"] += self.limiter.waited_seconds - before
        run["requests"] += 1
        try:
            resp = self.session.get(url, timeout=self.timeout, verify=self.verify, allow_redirects=True)
        except requests.exceptions.Timeout as exc:
            raise _Transient(KIND_TIMEOUT, f"timed out ({type(exc).__name__}, timeout={self.timeout})") from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            raise _Transient(KIND_TRUNCATED, f"truncated response body ({_short(exc)})") from exc
        except requests.exceptions.ConnectionError as exc:
            raise _Transient(KIND_CONNECTION, f"connection error ({_short(exc)})") from exc
        except requests.exceptions.RequestException as exc:
            raise HTTPStatusError(f"request failed: {_short(exc)}", url=url, resource=resource, skip=skip,
                                  limit=limit, attempts=attempt) from exc
        code = str(resp.status_code)
        run["status_codes"][code] = run["status_codes"].get(code, 0) + 1
        self._observe_rate_headers(resp)
        status = resp.status_code
        if status == 429 or status >= 500:
            retry_after = _retry_after_seconds(resp.headers.get("Retry-After"), self._wall())
            kind = KIND_429 if status == 429 else KIND_5XX
            raise _Transient(kind, f"HTTP {status}: {_body_hint(resp)}", retry_after)
        if status != 200:
            raise HTTPStatusError(f"HTTP {status} (not retried): {_body_hint(resp)}", url=url,
                                  resource=resource, skip=skip, limit=limit, attempts=attempt, status=status)
        raw = resp.content
        declared = resp.headers.get("Content-Length")
        try:
            return json.loads(raw)
        except ValueError as exc:
            hint = f"{len(raw)} bytes"
            if declared and resp.headers.get("Content-Encoding") is None and declared != str(len(raw)):
                hint += f" of a declared {declared}"
            kind = KIND_TRUNCATED if _looks_truncated(raw) else KIND_INVALID_JSON
            what = "truncated JSON body" if kind == KIND_TRUNCATED else "response body is not valid JSON"
            raise _Transient(kind, f"{what} ({hint}; {exc})") from exc

    def _observe_rate_headers(self, resp: requests.Response) -> None:
        if self.limiter is None:
            return
        headers = resp.headers
        try:
            announced = int(headers["X-RateLimit-Limit"])
            self.limiter.shrink(announced)
        except (KeyError, ValueError):
            pass
        try:
            remaining = int(headers["X-RateLimit-Remaining"])
        except (KeyError, ValueError):
            return
        if remaining > 0:
            return
        try:
            reset = float(headers["X-RateLimit-Reset"])
        except (KeyError, ValueError):
            self.limiter.block_for(self.limiter.period)
            return
        # Reset is epoch seconds (rounded up by the server); never wait longer than one period.
        self.limiter.block_for(min(max(0.0, reset - self._wall()), self.limiter.period))

    def _validate(self, resource: str, body: Any, skip: int, limit: int) -> tuple[int, list[dict]]:
        def bad(cause: str) -> _Transient:
            return _Transient(KIND_MALFORMED, f"malformed response: {cause}")

        if not isinstance(body, dict):
            raise bad(f"expected a JSON object envelope, got {type(body).__name__}")
        items = body.get(resource)
        if not isinstance(items, list):
            keys = ", ".join(sorted(map(str, body)))[:200]
            raise bad(f"envelope has no '{resource}' list (keys: {keys})")
        for key in ("total", "skip", "limit"):
            if not _is_int(body.get(key)):
                raise bad(f"envelope '{key}' is {body.get(key)!r}, expected an int")
        total, echoed_skip, echoed_limit = body["total"], body["skip"], body["limit"]
        if total < 0:
            raise bad(f"'total' is negative ({total})")
        if echoed_skip != skip:
            raise bad(f"'skip' is {echoed_skip}, expected the requested {skip}")
        if echoed_limit != len(items):
            raise bad(f"'limit' is {echoed_limit} but the page holds {len(items)} items")
        expected = max(0, min(limit, total - skip))
        if len(items) != expected:
            raise bad(f"page holds {len(items)} items, expected {expected} (total={total}, skip={skip}, "
                      f"limit={limit})")
        ids = set()
        for pos, item in enumerate(items):
            if not isinstance(item, dict):
                raise bad(f"item #{pos} is {type(item).__name__}, expected an object")
            if not _is_int(item.get("id")):
                raise bad(f"item #{pos} has no int 'id' (id={item.get('id')!r})")
            if item["id"] in ids:
                raise bad(f"id {item['id']} appears twice in the page")
            ids.add(item["id"])
        return total, items


def _short(exc: BaseException, width: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= width else text[: width - 3] + "..."


def _body_hint(resp: requests.Response, width: int = 200) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and "message" in body:
            return str(body["message"])[:width]
    except ValueError:
        pass
    text = resp.text.strip().replace("\n", " ")
    return text[:width] or "(empty body)"


def _looks_truncated(raw: bytes) -> bool:
    """A JSON document that starts like one but does not end like one."""
    text = raw.strip()
    if not text:
        return True
    pairs = {b"{"[0]: b"}"[0], b"["[0]: b"]"[0]}
    return text[0] in pairs and text[-1] != pairs[text[0]]
