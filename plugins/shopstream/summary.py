"""Print a short summary of the warehouse after a run: what each layer holds, and gold for the hour's day.

`python -m shopstream.summary --hour 2026-11-27T10:00:00Z` (used by `make demo`). Reads the warehouse connection
from AIRFLOW_CONN_WAREHOUSE_DB; says plainly which layers are not built yet.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import psycopg

from shopstream.connections import WAREHOUSE_DB, postgres_conninfo_from_env

LAYERS = {
    "bronze": ["raw_events", "raw_events_quarantine"],
    "silver": ["customers", "products", "orders", "order_items", "events", "quarantine"],
    "gold": ["dim_customers", "dim_products", "fct_orders", "fct_order_items", "agg_orders_daily",
             "agg_events_daily"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hour", required=True, help="logical hour, ISO-8601")
    args = parser.parse_args(argv)
    hour = datetime.fromisoformat(args.hour.replace("Z", "+00:00"))
    with psycopg.connect(postgres_conninfo_from_env(WAREHOUSE_DB), autocommit=True) as conn:
        existing = {(s, t) for s, t in conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('bronze','silver','gold')")}
        print(f"\n== Warehouse after hour {hour:%Y-%m-%d %H:00} UTC ==")
        for layer, tables in LAYERS.items():
            cells = []
            for t in tables:
                if (layer, t) in existing:
                    n = conn.execute(f'select count(*) from "{layer}"."{t}"').fetchone()[0]
                    cells.append(f"{t}={n}")
            print(f"{layer:<7} " + (", ".join(cells) if cells else "not built yet"))
        if ("bronze", "raw_events") in existing:
            rows = conn.execute(
                "select topic, count(*) from bronze.raw_events "
                "where event_ts >= %s and event_ts < %s + interval '1 hour' group by topic order by topic",
                (hour.replace(tzinfo=None), hour.replace(tzinfo=None))).fetchall()
            print("bronze rows for the hour: " + (", ".join(f"{t}={n}" for t, n in rows) or "none"))
        if ("gold", "agg_orders_daily") in existing:
            row = conn.execute("select orders, revenue from gold.agg_orders_daily where order_date = %s",
                               (hour.date(),)).fetchone()
            print(f"gold.agg_orders_daily {hour.date()}: orders={row[0] if row else 0} "
                  f"revenue={row[1] if row else 0}")
        if ("gold", "agg_events_daily") in existing:
            rows = conn.execute("select event_type, events from gold.agg_events_daily where event_date = %s "
                                "order by event_type", (hour.date(),)).fetchall()
            print(f"gold.agg_events_daily {hour.date()}: " + (", ".join(f"{t}={n}" for t, n in rows) or "none"))
        else:
            print("gold: not built yet (the dbt stage has not run or does not exist yet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
