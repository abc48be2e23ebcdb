"""Run the DummyJSON stand-in in the foreground until SIGTERM/SIGINT::

    python -m shopstream.dummyjson_stub --port 58080 --data ../shared/dummyjson
    python -m shopstream.dummyjson_stub --port 58080 --generate users=200,products=200,carts=200 --seed 7

scripts/dummyjson.sh (the native demo) and the compose service ``dummyjson`` start it this way. Exit codes:
0 after a signal, 2 for a bad argument or catalogue, 3 when the port is already in use.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from shopstream.dummyjson_stub.catalog import DEFAULT_SEED
from shopstream.dummyjson_stub.fault_rules import FAULTS_ENV
from shopstream.dummyjson_stub.server import DummyJSONServer, resolve_catalog

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shopstream.dummyjson_stub",
        description="Local DummyJSON-compatible API (/users, /products, /carts) with fault injection.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=58080)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="DIR", help="folder with users.json, products.json, carts.json")
    source.add_argument("--generate", metavar="SIZES",
                        help="generated catalogue, e.g. users=200,products=200,carts=200")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default %(default)s)")
    parser.add_argument("--rate-limit", type=int, default=100,
                        help="requests per window per client IP; 0 disables (default %(default)s)")
    parser.add_argument("--rate-window", type=float, default=10.0, help="seconds (default %(default)s)")
    parser.add_argument("--faults", default=os.environ.get(FAULTS_ENV),
                        help=f"fault spec, JSON or @file (default ${FAULTS_ENV})")
    parser.add_argument("--gzip-level", type=int, default=1, help="0 disables gzip (default %(default)s)")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    parser.add_argument("--no-admin", action="store_true", help="disable the /__* admin endpoints")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        catalog = resolve_catalog(args.data, args.generate, args.seed)
        server = DummyJSONServer(catalog, host=args.host, port=args.port, rate_limit=args.rate_limit or None,
                                 rate_window=args.rate_window, faults=args.faults, gzip_level=args.gzip_level,
                                 access_log=args.access_log, admin=not args.no_admin)
        url = server.bind()
    except OSError as exc:
        if getattr(exc, "errno", None) in (98, 48):  # EADDRINUSE (Linux, macOS)
            print(f"error: cannot listen on {args.host}:{args.port}: the port is already in use", file=sys.stderr)
            return 3
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def _stop(signum: int, frame: Any) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    limiter = server.rate_limiter
    log.info("DummyJSON-compatible server on %s (data: %s, sizes %s, rate limit %s, %d fault rule(s))",
             url, catalog.source, catalog.sizes,
             f"{limiter.limit}/{limiter.window:g}s" if limiter else "off", len(server.faults.rules))
    try:
        server.serve_forever()
    finally:
        server.stop()
        log.info("DummyJSON-compatible server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
