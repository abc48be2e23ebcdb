"""The DummyJSON stand-in as one object: catalogue, routes, rate limit, fault rules and the HTTP server,
serving in a background thread (tests, benchmarks) or in the foreground (``python -m
shopstream.dummyjson_stub``, see :mod:`shopstream.dummyjson_stub.__main__`).

Embed it (tests)::

    with DummyJSONServer(catalog, rate_limit=None) as base_url:   # port 0: a free port, in a thread
        requests.get(f"{base_url}/users?limit=5")

The default rate limit is DummyJSON's (100 requests per 10 s per client IP; ``rate_limit=None`` turns it
off); fault rules are described in :mod:`shopstream.dummyjson_stub.fault_rules`. Settings can change on a
running server (:meth:`DummyJSONServer.configure`, :meth:`DummyJSONServer.set_faults`, or the admin
endpoints of :mod:`shopstream.dummyjson_stub.http_handler`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from shopstream.dummyjson_stub.catalog import (
    DEFAULT_SEED,
    SNAPSHOT_SIZES,
    Catalog,
    generate_catalog,
    has_snapshot,
    load_snapshot,
    parse_sizes,
    snapshot_dir,
)
from shopstream.dummyjson_stub.fault_rules import FaultPlan
from shopstream.dummyjson_stub.http_handler import DummyJSONHTTPServer
from shopstream.dummyjson_stub.rate_limit import FixedWindowRateLimit
from shopstream.dummyjson_stub.routes import DummyJSONApp


def resolve_catalog(
    data_dir: str | os.PathLike[str] | None = None,
    generate: str | dict[str, int] | None = None,
    seed: int = DEFAULT_SEED,
) -> Catalog:
    """Snapshot folder when given (must exist), generated catalogue when sizes are given, else the
    default snapshot folder when present, else a generated catalogue of the snapshot's sizes."""
    if data_dir is not None:
        if not has_snapshot(data_dir):
            raise FileNotFoundError(f"{data_dir}: no users.json, products.json and carts.json there")
        return load_snapshot(data_dir)
    if generate is not None:
        sizes = parse_sizes(generate) if isinstance(generate, str) else {**SNAPSHOT_SIZES, **generate}
        return generate_catalog(seed=seed, **sizes)
    default = snapshot_dir()
    if has_snapshot(default):
        return load_snapshot(default)
    return generate_catalog(seed=seed)


class DummyJSONServer:
    """The HTTP server in a background thread. ``with DummyJSONServer(...) as base_url: ...``.

    Holds what every request shares: the routes (``app``), the rate limiter, the fault plan, the settings
    and the statistics behind ``/__stats``."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        generate: str | dict[str, int] | None = None,
        seed: int = DEFAULT_SEED,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int | None = 100,
        rate_window: float = 10.0,
        faults: Any = None,
        clock: Callable[[], float] = time.time,
        gzip_level: int = 1,
        access_log: bool = False,
        admin: bool = True,
    ) -> None:
        self.catalog = catalog if catalog is not None else resolve_catalog(data_dir, generate, seed)
        self.app = DummyJSONApp(self.catalog)
        self.host = host
        self.requested_port = port
        self.clock = clock
        self.rate_limiter: FixedWindowRateLimit | None = None
        self.configure(rate_limit=rate_limit, rate_window=rate_window)
        self.faults = FaultPlan(faults)
        self.gzip_level = int(gzip_level)
        self.access_log = access_log
        self.admin = admin
        self._stopping = threading.Event()
        self._stats_lock = threading.Lock()
        self._stats: dict[str, Any] = {}
        self.reset_stats()
        self._httpd: DummyJSONHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- configuration at runtime ---
    def configure(self, *, rate_limit: int | None = None, rate_window: float | None = None) -> None:
        window = float(rate_window if rate_window is not None else
                       (self.rate_limiter.window if self.rate_limiter else 10.0))
        if window <= 0:
            raise ValueError("rate_window must be > 0")
        self.rate_limiter = FixedWindowRateLimit(rate_limit, window, self.clock) if rate_limit else None

    def set_faults(self, spec: Any) -> None:
        """Replace the fault rules (counters start from zero)."""
        self.faults.set(spec)

    def clear_faults(self) -> None:
        self.faults.set(None)

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = {"requests": 0, "responses": {}, "events": {}}

    def reset(self) -> None:
        self.reset_stats()
        self.faults.reset_counters()
        if self.rate_limiter is not None:
            self.rate_limiter.reset()

    # --- what the HTTP handler reports and waits on ---
    def count_request(self) -> None:
        """One data request arrived (admin requests are not counted)."""
        with self._stats_lock:
            self._stats["requests"] += 1

    def count_response(self, status: int) -> None:
        with self._stats_lock:
            key = str(status)
            self._stats["responses"][key] = self._stats["responses"].get(key, 0) + 1

    def count_event(self, name: str) -> None:
        """A rate-limited request or a fired fault ("rate_limited", "fault:<kind>")."""
        with self._stats_lock:
            self._stats["events"][name] = self._stats["events"].get(name, 0) + 1

    def pause(self, seconds: float) -> None:
        """Sleep for a ``delay`` or a ``slow`` fault; :meth:`stop` cuts it short so a stop never waits on it."""
        self._stopping.wait(seconds)

    def stats(self) -> dict[str, Any]:
        """{"requests": data requests seen, "responses": {status: n}, "events": {"fault:drop": n, ...}}."""
        with self._stats_lock:
            return json.loads(json.dumps(self._stats))

    def health(self) -> dict[str, Any]:
        limiter = self.rate_limiter
        return {"status": "ok", "source": self.catalog.source, "sizes": self.catalog.sizes,
                "rate_limit": limiter.limit if limiter else None,
                "rate_window": limiter.window if limiter else None,
                "faults": len(self.faults.rules)}

    # --- lifecycle ---
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def bind(self) -> str:
        self._httpd = DummyJSONHTTPServer((self.host, self.requested_port), self)
        return self.url

    def start(self) -> str:
        """Bind and serve in a daemon thread; return the base URL."""
        if self._httpd is None:
            self.bind()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"dummyjson-server-{self.port}", daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`request_stop` (the CLI); then call :meth:`stop`."""
        if self._httpd is None:
            self.bind()
        self._httpd.serve_forever(poll_interval=0.2)

    def request_stop(self) -> None:
        """Make :meth:`serve_forever` return, from a signal handler: ``shutdown()`` waits for the serving
        loop, which runs in the very thread the handler interrupted, so it is called from a helper thread."""
        if self._httpd is not None:
            threading.Thread(target=self._httpd.shutdown, daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(timeout=5)
            self._httpd.server_close()
            self._httpd = None
            self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
