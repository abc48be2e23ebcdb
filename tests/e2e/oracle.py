"""An independent oracle: what gold must contain after hours H1..Hn went through the pipeline.

Computed in plain Python straight from the source data - the DummyJSON snapshot and the messages the
extract stage publishes for each hour (`shopstream.extract.messages.build_messages`, i.e. the derivation
plus the PII policy) - by applying the spec's business rules (/work/shared/seed/medallion-architecture.md,
docs/contracts.md, the silver/gold column descriptions). It reuses no dbt SQL: the point is that two
independent implementations of the rules agree.

Rules applied (those that matter for well-formed input; the oracle refuses input it does not model):
- latest version wins per key, ordered by the Kafka timestamp (a republished identical hour changes nothing);
- customers: id as text, names as sent, email trimmed + lower-cased (must be valid and unique);
  created_at = the first hour the customer was published (its Kafka timestamp), updated_at = the last;
- products: title -> name, price, category, meta.createdAt/updatedAt (UTC, ms precision);
- orders: order_ts -> order_date, total_amount, status, customer_email = the customer's email in gold;
  a version is admitted only when its customer and all its products exist; gold holds the latest admitted
  version (a newer version waiting for a parent leaves the previous admissible one in place);
- order items: line_total = quantity * unit_price, order_date and customer_id of the order;
- events: a version is admitted when the customer exists (latest admitted version wins); agg_events_daily counts per (UTC day of event_ts, type);
- agg_orders_daily: orders and sum(total_amount) per UTC day of order_date.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from shopstream.extract.derive import DEFAULT_SETTINGS, DeriveSettings
from shopstream.extract.messages import TOPICS, Snapshot, build_messages
from shopstream.hours import to_utc_hour

GOLD_COLUMNS: dict[str, tuple[str, ...]] = {
    "dim_customers": ("customer_id", "first_name", "last_name", "email", "created_at", "updated_at"),
    "dim_products": ("product_id", "name", "description", "price", "category", "created_at", "updated_at"),
    "fct_orders": ("order_id", "customer_id", "order_date", "total_amount", "status", "customer_email"),
    "fct_order_items": ("order_item_id", "order_id", "product_id", "quantity", "unit_price", "line_total",
                        "order_date", "customer_id"),
    "agg_orders_daily": ("order_date", "orders", "revenue"),
    "agg_events_daily": ("event_date", "event_type", "events"),
}
GOLD_KEYS: dict[str, tuple[str, ...]] = {
    "dim_customers": ("customer_id",),
    "dim_products": ("product_id",),
    "fct_orders": ("order_id",),
    "fct_order_items": ("order_item_id",),
    "agg_orders_daily": ("order_date",),
    "agg_events_daily": ("event_date", "event_type"),
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


class UnmodelledInput(AssertionError):
    """The source data holds a case the oracle does not model (it would have to guess)."""


def _naive_utc(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _ts_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


@dataclass
class Published:
    """Every message of the hours, per base topic: (kafka timestamp, parsed value)."""

    by_topic: dict[str, list[tuple[datetime, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (hour iso, topic) -> messages
    items: dict[str, int] = field(default_factory=dict)  # hour iso -> order items


def published(catalog: Mapping[str, Sequence[Mapping[str, Any]]], hours: Iterable[datetime],
              settings: DeriveSettings = DEFAULT_SETTINGS) -> Published:
    """The messages the extract stage publishes for `hours` (each hour independently, as the DAG does)."""
    snapshot = Snapshot(users=catalog["users"], products=catalog["products"], carts=catalog["carts"])
    out = Published()
    for hour in sorted({to_utc_hour(h) for h in hours}):
        iso = hour.strftime("%Y-%m-%dT%H:00:00Z")
        for topic in TOPICS:
            msgs = build_messages(topic, snapshot, hour, settings)
            out.counts[(iso, topic)] = len({m.key for m in msgs})
            for m in msgs:
                value = json.loads(m.value)
                out.by_topic[topic].append((_ts_ms(m.timestamp_ms), value))
                if topic == "orders":
                    out.items[iso] = out.items.get(iso, 0) + len(value["items"])
    return out


def _latest(versions: Iterable[tuple[datetime, dict[str, Any]]], key: str) -> dict[str, tuple[datetime, datetime, dict]]:
    """key -> (first seen ts, latest ts, latest value); identical-timestamp versions must be identical."""
    out: dict[str, tuple[datetime, datetime, dict]] = {}
    for ts, value in versions:
        k = str(value[key])
        if k not in out:
            out[k] = (ts, ts, value)
            continue
        first, last, held = out[k]
        if ts == last and value != held:
            raise UnmodelledInput(f"{key}={k}: two different versions share the timestamp {ts}")
        out[k] = (min(first, ts), max(last, ts), value if ts >= last else held)
    return out


def expected_gold(catalog: Mapping[str, Sequence[Mapping[str, Any]]], hours: Iterable[datetime],
                  settings: DeriveSettings = DEFAULT_SETTINGS) -> dict[str, list[tuple]]:
    """{gold table: rows sorted by key} with the columns of GOLD_COLUMNS, as psycopg returns them."""
    return gold_from_messages(published(catalog, hours, settings).by_topic)


def gold_from_messages(by_topic: Mapping[str, Sequence[tuple[datetime, dict[str, Any]]]]) -> dict[str, list[tuple]]:
    """Gold after every message of `by_topic` ({base topic: [(Kafka timestamp, value), ...]}, any order,
    re-sends included) went through the pipeline, in whatever batches: the business rules only."""
    customers: dict[str, dict[str, Any]] = {}
    emails: dict[str, str] = {}
    for cid, (first, last, v) in _latest(by_topic.get("customers", ()), "id").items():
        email = str(v.get("email") or "").strip().lower()
        if not _EMAIL.match(email):
            raise UnmodelledInput(f"customer {cid}: invalid email {v.get('email')!r}")
        if email in emails:
            raise UnmodelledInput(f"customers {emails[email]} and {cid} share the email {email}")
        emails[email] = cid
        customers[cid] = {"customer_id": cid, "first_name": v.get("firstName"), "last_name": v.get("lastName"),
                          "email": email, "created_at": first, "updated_at": last}

    products: dict[str, dict[str, Any]] = {}
    for pid, (_, _, v) in _latest(by_topic.get("products", ()), "id").items():
        price = Decimal(str(v["price"]))
        if price < 0:
            raise UnmodelledInput(f"product {pid}: negative price")
        meta = v.get("meta") or {}
        products[pid] = {"product_id": pid, "name": v.get("title"), "description": v.get("description"),
                         "price": price, "category": v.get("category"),
                         "created_at": _naive_utc(meta["createdAt"]) if meta.get("createdAt") else None,
                         "updated_at": _naive_utc(meta["updatedAt"]) if meta.get("updatedAt") else None}

    orders: dict[str, dict[str, Any]] = {}
    items: dict[str, dict[str, Any]] = {}
    def admissible(v: Mapping[str, Any]) -> bool:  # its customer and every product it names exist
        return v["customer_id"] in customers and all(i["product_id"] in products for i in v["items"])

    # A version that waits for a parent (pending) does not hide the last version that could be admitted.
    for oid, (_, _, v) in _latest([(ts, v) for ts, v in by_topic.get("orders", ()) if admissible(v)],
                                  "order_id").items():
        total = Decimal(v["total_amount"])
        lines = sum((int(i["quantity"]) * Decimal(i["unit_price"]) for i in v["items"]), Decimal("0"))
        if lines != total:
            raise UnmodelledInput(f"order {oid}: total {total} != sum of lines {lines}")
        order_date = _naive_utc(v["order_ts"])
        orders[oid] = {"order_id": oid, "customer_id": v["customer_id"], "order_date": order_date,
                       "total_amount": total, "status": v["status"],
                       "customer_email": customers[v["customer_id"]]["email"]}
        for i in v["items"]:
            qty, price = int(i["quantity"]), Decimal(i["unit_price"])
            items[i["order_item_id"]] = {"order_item_id": i["order_item_id"], "order_id": oid,
                                         "product_id": i["product_id"], "quantity": qty, "unit_price": price,
                                         "line_total": qty * price, "order_date": order_date,
                                         "customer_id": v["customer_id"]}

    events_daily: Counter[tuple[date, str]] = Counter()
    for _, (_, _, v) in _latest([(ts, v) for ts, v in by_topic.get("events", ())
                                 if v["customer_id"] in customers], "event_id").items():
        events_daily[(_naive_utc(v["event_ts"]).date(), v["event_type"])] += 1

    orders_daily: dict[date, list] = {}
    for o in orders.values():
        day = orders_daily.setdefault(o["order_date"].date(), [0, Decimal("0")])
        day[0] += 1
        day[1] += o["total_amount"]

    def rows(table: str, records: Iterable[Mapping[str, Any]]) -> list[tuple]:
        cols = GOLD_COLUMNS[table]
        return sorted(tuple(r[c] for c in cols) for r in records)

    return {
        "dim_customers": rows("dim_customers", customers.values()),
        "dim_products": rows("dim_products", products.values()),
        "fct_orders": rows("fct_orders", orders.values()),
        "fct_order_items": rows("fct_order_items", items.values()),
        "agg_orders_daily": sorted((d, n, rev) for d, (n, rev) in orders_daily.items()),
        "agg_events_daily": sorted((d, t, n) for (d, t), n in events_daily.items()),
    }


def actual_gold(conn) -> dict[str, list[tuple]]:
    """The same tables read from the warehouse (psycopg connection), same columns, same order."""
    out = {}
    for table, cols in GOLD_COLUMNS.items():
        select = ", ".join(f'"{c}"' for c in cols)
        out[table] = sorted(tuple(r) for r in conn.execute(f"select {select} from gold.{table}").fetchall())
    return out


def diff(expected: Mapping[str, list[tuple]], actual: Mapping[str, list[tuple]], limit: int = 5) -> list[str]:
    """Human-readable differences, table by table (empty when equal)."""
    problems = []
    for table in GOLD_COLUMNS:
        exp, act = expected.get(table, []), actual.get(table, [])
        if exp == act:
            continue
        nkey = len(GOLD_KEYS[table])
        e_by = {r[:nkey]: r for r in exp}
        a_by = {r[:nkey]: r for r in act}
        missing = [e_by[k] for k in sorted(set(e_by) - set(a_by))]
        extra = [a_by[k] for k in sorted(set(a_by) - set(e_by))]
        changed = [(e_by[k], a_by[k]) for k in sorted(set(e_by) & set(a_by)) if e_by[k] != a_by[k]]
        problems.append(f"gold.{table}: expected {len(exp)} rows, got {len(act)}; missing {len(missing)} "
                        f"{missing[:limit]}, unexpected {len(extra)} {extra[:limit]}, different {len(changed)} "
                        f"{changed[:limit]}")
    return problems
