"""Benchmark harness: runs every bench/bench_*.py and writes bench/results/latest.json.

Each benchmark module defines `run(quick: bool) -> list[dict]`, each dict
`{"name": str, "figures": {...}, "ratios": {...}, "targets": {...}, "notes": str}`.
`make bench` runs them all; `make bench ONLY=bronze` runs bench_bronze.py alone; BENCH_QUICK=1 shrinks sizes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    only = os.environ.get("ONLY", "")
    quick = os.environ.get("BENCH_QUICK", "0") == "1"
    modules = sorted(HERE.glob("bench_*.py"))
    if only:
        modules = [m for m in modules if only in m.stem]
    results: list[dict] = []
    failed = 0
    for path in modules:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        started = time.perf_counter()
        print(f"--- {path.name}", flush=True)
        try:
            spec.loader.exec_module(module)
            for row in module.run(quick=quick):
                row.setdefault("module", path.name)
                results.append(row)
        except Exception:  # noqa: BLE001 - report and carry on with the other benchmarks
            failed += 1
            traceback.print_exc()
            results.append({"name": path.stem, "module": path.name, "error": traceback.format_exc(limit=3)})
        print(f"    {path.name}: {time.perf_counter() - started:.1f} s", flush=True)
    out = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "quick": quick,
        "benchmarks": results,
    }
    (HERE / "results").mkdir(exist_ok=True)
    latest = HERE / "results" / "latest.json"
    if only and latest.exists():  # a partial run updates its own rows and keeps the other benchmarks' rows
        ran = {p.name for p in modules}
        try:
            kept = [r for r in json.loads(latest.read_text()).get("benchmarks", []) if r.get("module") not in ran]
        except (ValueError, AttributeError):
            kept = []
        out["benchmarks"] = kept + results
    latest.write_text(json.dumps(out, indent=2) + "\n")
    print()
    print(f"{'benchmark':<44} {'figures':<60} ratios")
    for row in results:
        figs = ", ".join(f"{k}={_fmt(v)}" for k, v in (row.get("figures") or {}).items())
        ratios = ", ".join(f"{k}={_fmt(v)}" for k, v in (row.get("ratios") or {}).items())
        print(f"{row['name']:<44} {figs or row.get('error', '')[:60]:<60} {ratios}")
    print(f"\nwrote {HERE / 'results' / 'latest.json'}")
    return 1 if failed else 0


def _fmt(v):
    return f"{v:,.2f}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    sys.exit(main())
