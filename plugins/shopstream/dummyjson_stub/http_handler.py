"""HTTP for the DummyJSON stand-in: one request in, the rate limit, faults and routes applied, one response out.

Around :class:`~shopstream.dummyjson_stub.routes.DummyJSONApp` it adds what the real service does on the
wire: an HTML 404 for unknown paths, 301 for a trailing slash, gzip, weak ETags (304 on ``If-None-Match``),
CORS echo of ``Origin``, the fixed-window rate limit (``X-RateLimit-*`` headers, 429 with ``Retry-After``)
and any JSON 500 for an unexpected failure. It also carries out the injected faults of
:mod:`shopstream.dummyjson_stub.fault_rules`.

The admin endpoints (not rate limited, never faulted): ``GET /__health``, ``GET /__faults`` (rules +
counters), ``POST /__faults`` (JSON body) or ``GET /__faults?spec=<json>`` (replace the rules),
``DELETE /__faults``, ``GET /__stats``, ``POST /__reset`` (stats, fault counters and rate window),
``POST /__config`` (``rate_limit``, ``rate_window``).

Settings, counters and the stop signal belong to the owning
:class:`~shopstream.dummyjson_stub.server.DummyJSONServer` (``self.server.owner``).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import math
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from shopstream.dummyjson_stub.fault_rules import BODY_FAULTS, FaultRule, apply_body_fault
from shopstream.dummyjson_stub.rate_limit import RATE_LIMIT_MESSAGE
from shopstream.dummyjson_stub.routes import PREFIXES, ApiError

if TYPE_CHECKING:
    from shopstream.dummyjson_stub.server import DummyJSONServer

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


def _html_404(method: str, path: str) -> bytes:
    safe = path.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
            f"</head>\n<body>\n<pre>Cannot {method} {safe}</pre>\n</body>\n</html>\n").encode()


def _etag(body: bytes) -> str:
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    return f'W/"{len(body):x}-{digest}"'


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class DummyJSONRequestHandler(BaseHTTPRequestHandler):
    """One connection (HTTP/1.1 keep-alive): admin paths (``/__*``) go to :meth:`_admin`, every other path
    through the rate limit and the fault plan to the routes (:meth:`_serve`)."""

    protocol_version = "HTTP/1.1"
    server_version = "shopstream-dummyjson/1"
    timeout = 60  # idle keep-alive connections

    server: DummyJSONHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms
        # to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.owner.access_log:
            sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {format % args}\n")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    # --- plumbing ---
    def _send(self, status: int, body: bytes, content_type: str | None = JSON_TYPE,
              headers: dict[str, str] | None = None, *, compress: bool = True) -> None:
        owner = self.server.owner
        extra = dict(headers or {})
        if (compress and owner.gzip_level and len(body) > 1024
                and "gzip" in (self.headers.get("Accept-Encoding") or "")):
            body = gzip.compress(body, compresslevel=owner.gzip_level, mtime=0)
            extra["Content-Encoding"] = "gzip"
            extra["Vary"] = "Accept-Encoding"
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        owner.count_response(status)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _client_key(self) -> str:
        forwarded = self.headers.get("X-Forwarded-For")
        if forwarded:
            return forwarded.split(",")[0].strip()
        return self.client_address[0]

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path, raw_query = split.path or "/", split.query
        query = parse_qs(raw_query, keep_blank_values=True)
        try:
            if path.startswith("/__"):
                self._admin(method, path, query)
                return
            self._serve(method, path, raw_query, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # the contract: any unexpected failure is a JSON 500
            log.exception("unexpected error serving %s", self.path)
            try:
                self._send(500, _dumps({"message": f"{type(exc).__name__}: {exc}"}))
            except OSError:
                self.close_connection = True

    def _serve(self, method: str, path: str, raw_query: str, query: dict[str, list[str]]) -> None:
        owner = self.server.owner
        owner.count_request()
        headers: dict[str, str] = {}
        limiter = owner.rate_limiter
        if limiter is not None:
            allowed, headers = limiter.hit(self._client_key())
            if not allowed:
                owner.count_event("rate_limited")
                self._send(429, _dumps({"message": RATE_LIMIT_MESSAGE}),
                           headers={**headers, "Retry-After": str(math.ceil(limiter.window))})
                return
        origin = self.headers.get("Origin")
        if origin:
            headers.update({"Access-Control-Allow-Origin": origin,
                            "Access-Control-Allow-Credentials": "true", "Vary": "Origin"})

        fault = owner.faults.pick(path, query) if method in ("GET", "HEAD") else None
        if fault is not None:
            owner.count_event(f"fault:{fault.kind}")
            if fault.kind == "drop":
                self._hang_up()
                return
            if fault.kind == "slow":
                owner.pause(float(fault.spec.get("seconds", 2.0)))
            elif fault.kind == "429":
                retry_after = fault.spec.get("retry_after", 10)
                self._send(429, _dumps({"message": RATE_LIMIT_MESSAGE}),
                           headers={**headers, "Retry-After": str(retry_after)})
                return
            elif fault.kind == "status":
                status = int(fault.spec.get("status", 500))
                extra = dict(headers)
                if "retry_after" in fault.spec:
                    extra["Retry-After"] = str(fault.spec["retry_after"])
                message = fault.spec.get("message", f"injected fault: HTTP {status}")
                self._send(status, _dumps({"message": message}), headers=extra)
                return
            elif fault.kind == "html":
                self._send(200, b"<html><body><h1>Service temporarily unavailable</h1></body></html>",
                           HTML_TYPE, headers)
                return

        if method not in ("GET", "HEAD"):
            self._send(404, _html_404(method, path), HTML_TYPE, headers)
            return
        if path != "/" and path.endswith("/"):
            location = path[:-1] + (f"?{raw_query}" if raw_query else "")
            self._send(301, f"Moved Permanently. Redirecting to {location}".encode(),
                       "text/plain; charset=utf-8", {**headers, "Location": location})
            return
        if path == "/":
            self._send(200, b"<html><body><h1>DummyJSON-compatible local server (ShopStream)</h1>"
                            b"<p>/users /products /carts</p></body></html>", HTML_TYPE, headers)
            return
        try:
            delay = owner.app.parse_delay(query) if path.split("/")[1] in PREFIXES else 0.0
            result = owner.app.route(path, query)
        except ApiError as err:
            self._send(err.status, _dumps({"message": err.message}), headers=headers)
            return
        if result is None:
            self._send(404, _html_404(method, path), HTML_TYPE, headers)
            return
        status, payload = result
        if delay:
            owner.pause(delay)
        if fault is not None and fault.kind in BODY_FAULTS:
            payload = apply_body_fault(payload, fault)
        body = _dumps(payload)
        if fault is not None and fault.kind == "truncate":
            self._send_truncated(body, fault, headers)
            return
        etag = _etag(body)
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            owner.count_response(304)
            return
        self._send(status, body, headers={**headers, "ETag": etag})

    def _send_truncated(self, body: bytes, fault: FaultRule, headers: dict[str, str]) -> None:
        cut = body[: max(1, int(len(body) * float(fault.spec.get("fraction", 0.5))))]
        mode = fault.spec.get("mode", "cut")
        self.send_response(200)
        self.send_header("Content-Type", JSON_TYPE)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if mode == "cut" else len(cut)))
        if mode == "cut":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(cut)
        self.wfile.flush()
        self.server.owner.count_response(200)
        if mode == "cut":
            self._hang_up()

    def _hang_up(self) -> None:
        """Close the connection without (the rest of) a response: the client sees a reset or a short body."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- admin ---
    def _admin(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        owner = self.server.owner
        if not owner.admin:
            self._send(404, _html_404(method, path), HTML_TYPE)
            return
        try:
            if path == "/__health" and method == "GET":
                self._send(200, _dumps(owner.health()))
            elif path == "/__faults" and method == "GET":
                if "spec" in query:
                    owner.set_faults(query["spec"][-1])
                self._send(200, _dumps({"rules": owner.faults.describe()}))
            elif path == "/__faults" and method in ("POST", "PUT"):
                owner.set_faults(self._read_body() or None)
                self._send(200, _dumps({"rules": owner.faults.describe()}))
            elif path == "/__faults" and method == "DELETE":
                owner.set_faults(None)
                self._send(200, _dumps({"rules": []}))
            elif path == "/__stats" and method == "GET":
                self._send(200, _dumps(owner.stats()))
            elif path == "/__reset" and method == "POST":
                owner.reset()
                self._send(200, _dumps(owner.stats()))
            elif path == "/__config" and method == "POST":
                conf = json.loads(self._read_body() or b"{}")
                owner.configure(**{k: conf[k] for k in ("rate_limit", "rate_window") if k in conf})
                self._send(200, _dumps(owner.health()))
            else:
                self._send(404, _html_404(method, path), HTML_TYPE)
        except (ValueError, TypeError) as exc:
            self._send(400, _dumps({"message": str(exc)}))


class DummyJSONHTTPServer(ThreadingHTTPServer):
    """A thread per connection; ``owner`` is the :class:`DummyJSONServer` whose settings the handler reads.
    A client that hangs up mid-response is normal here (drop/truncate faults, clients that time out), so
    connection errors are not printed as tracebacks."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: DummyJSONServer) -> None:
        self.owner = owner
        super().__init__(address, DummyJSONRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)
