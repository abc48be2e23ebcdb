"""DummyJSON API benchmark: full extractions (users, products, carts) through the local compatible server.

Cases (each against a fresh embedded server on 127.0.0.1, real HTTP):
* the snapshot (208/194/208; a generated catalogue of the same size when the folder is absent), page size
  100, DummyJSON's rate limit on both sides (100 requests per 10 s);
* a generated catalogue 100x larger (20,800 users, 19,400 products, 20,800 carts; quick mode: 10x):
  page 100 with the rate limit on both sides (the limiter dominates: 610 requests need > 60 s), page 100
  with no rate limit (raw throughput), and page 1,000 with the rate limit;
* the generator itself: 200,000 users (quick mode: 20,000).
Figures: requests, retries, records, wall seconds, records/s.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))


def _extract(catalog, label: str, *, page_size: int, rate_limit: int | None) -> dict:
    from shopstream.dummyjson.client import DummyJSONClient
    from shopstream.dummyjson_stub.server import DummyJSONServer

    with DummyJSONServer(catalog, rate_limit=rate_limit) as url:
        client = DummyJSONClient(url, page_size=page_size, rate_limit=rate_limit)
        started = time.perf_counter()
        counts = {r: len(client.fetch_all(r)) for r in ("users", "products", "carts")}
        wall = time.perf_counter() - started
        client.close()
    assert counts == catalog.sizes, (counts, catalog.sizes)
    records = sum(counts.values())
    stats = client.stats
    return {
        "name": f"dummyjson_extract_{label}",
        "figures": {
            "records": records,
            "requests": stats["requests"],
            "retries": stats["retries"],
            "wall_s": round(wall, 3),
            "throttle_s": round(stats["throttle_seconds"], 3),
            "records_per_s": round(records / wall, 1),
        },
        "notes": f"users={counts['users']} products={counts['products']} carts={counts['carts']}; "
                 f"page_size={page_size}; rate limit "
                 f"{f'{rate_limit}/10s on client and server' if rate_limit else 'off'}",
    }


def run(quick: bool) -> list[dict]:
    from shopstream.dummyjson_stub.catalog import generate_catalog, has_snapshot, load_snapshot, snapshot_dir

    folder = snapshot_dir(ROOT)
    base = load_snapshot(folder) if has_snapshot(folder) else generate_catalog()
    rows = [_extract(base, "snapshot_page100", page_size=100, rate_limit=100)]

    factor = 10 if quick else 100
    started = time.perf_counter()
    big = generate_catalog(users=208 * factor, products=194 * factor, carts=208 * factor, seed=11)
    gen_s = time.perf_counter() - started
    rows.append(_extract(big, f"generated_{factor}x_page100_ratelimited", page_size=100, rate_limit=100))
    rows.append(_extract(big, f"generated_{factor}x_page100_unlimited", page_size=100, rate_limit=None))
    rows.append(_extract(big, f"generated_{factor}x_page1000_ratelimited", page_size=1000, rate_limit=100))

    n_users = 20_000 if quick else 200_000
    started = time.perf_counter()
    generate_catalog(users=n_users, products=0, carts=0, seed=1)
    users_s = time.perf_counter() - started
    rows.append({
        "name": "dummyjson_generator",
        "figures": {f"gen_{factor}x_catalogue_s": round(gen_s, 2), f"gen_{n_users}_users_s": round(users_s, 2),
                    "users_per_s": round(n_users / users_s)},
        "notes": "generate_catalog, plain loops, one process",
    })
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
