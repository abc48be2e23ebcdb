"""An independent oracle: what gold must contain after hours H1..Hn went through the pipeline.

Computed in plain Python straight from the source data - the DummyJSON snapshot and the messages the
extract stage publishes for each hour (`shopstream.extract.messages.build_messages`, i.e. the derivation
plus the PII policy) - by applying the spec's business rules (/work/shared/seed/medallion-architecture.md,
docs/contracts.md, the silver/gold column descriptions). It reuses no dbt SQL: the point is that two
independent implementations of the rules agree.

Rules applied (those that matter for well-formed input; the oracle refuses input it does not model):
- latest version wins per key, ordered by the Kafka timestamp (a republished identical hour changes nothing);
- customers: id as text, names as sent, email trimmed + lower-cased (must be valid); an address goes to the
  first claim received, later claims wait (`customers_by_arrival`);
  created_at = the first hour the customer was published (its Kafka timestamp), updated_at = the last;
- products: title -> name, price, category, meta.createdAt/updatedAt (UTC, ms precision);
- orders: order_ts -> order_date, total_amount, status, customer_email = the customer's email in gold;
  a version is admitted only when its customer and all its products exist; gold holds the latest admitted
  version (a newer version waiting for a parent leaves the previous admissible one in place);
- order items: line_total = quantity * unit_price, order_date and customer_id of the order;
- events: a version is admitted when the customer exists (latest admitted version wins); agg_events_daily counts per (UTC day of event_ts, type);
- agg_orders_daily: orders and sum(total_amount) per UTC day of order_date.

`warehouse_from_messages` extends this to every silver table and the quarantine (for the property tests,
tests/property). Rules it does not model, and why (the generator leaves these cases out):
- rejections other than the timestamp window (schema, types, e-mail syntax, item rules...): each has its own
  example in tests/integration; modelling them would copy staging's SQL rather than check it;
- the reject-rate gate (`rejected_batch`): it judges a batch by its share of rejects, and a full refresh (one
  batch) overrides it on purpose.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
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

# Every table the oracle derives, with the columns compared (the spec's columns; audit columns excluded).
WAREHOUSE_COLUMNS: dict[str, tuple[str, ...]] = {
    "silver.customers": GOLD_COLUMNS["dim_customers"],
    "silver.products": GOLD_COLUMNS["dim_products"],
    "silver.orders": ("order_id", "customer_id", "order_date", "total_amount", "status", "created_at", "updated_at"),
    "silver.order_items": ("order_item_id", "order_id", "product_id", "quantity", "unit_price", "created_at"),
    "silver.events": ("event_id", "customer_id", "event_type", "event_data", "created_at"),
    **{f"gold.{table}": cols for table, cols in GOLD_COLUMNS.items()},
    "silver.quarantine": ("source_table", "record_key", "reason", "status", "bronze_id"),
}
WAREHOUSE_KEYS: dict[str, int] = {  # how many leading columns identify a row (for readable diffs)
    **{table: 1 for table in WAREHOUSE_COLUMNS}, "gold.agg_events_daily": 2, "silver.quarantine": 5,
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


@dataclass(frozen=True)
class Received:
    """One bronze row as the oracle takes it: the Kafka coordinates decide only between versions that
    nothing else tells apart (verbatim re-sends)."""

    topic: str  # base topic: customers, products, orders, events
    kafka_ts: datetime  # naive UTC
    value: dict[str, Any]
    partition: int = 0
    offset: int = 0
    bronze_id: int | None = None
    ingested_at: datetime | None = None  # naive UTC; the future bound is relative to it (default: now)


# The valid window of every timestamp (dbt_project.yml vars min_valid_timestamp, max_future_hours).
MIN_VALID_TIMESTAMP = datetime(2000, 1, 1)
MAX_FUTURE = timedelta(hours=24)
# The lifecycle order of an order's statuses (var order_statuses): the tie-break of versions with one timestamp.
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled")
KEY_FIELD = {"customers": "id", "products": "id", "orders": "order_id", "events": "event_id"}


def _window_reason(ts: datetime | None, field_name: str, received: Received) -> str | None:
    if ts is None:
        return None
    if ts > (received.ingested_at or datetime.now(UTC).replace(tzinfo=None)) + MAX_FUTURE:
        return f"future_timestamp:{field_name}"
    if ts < MIN_VALID_TIMESTAMP:
        return f"past_timestamp:{field_name}"
    return None


def intrinsic_reason(r: Received) -> str | None:
    """Why staging rejects the message on its own, for the defects the property tests generate (timestamps
    outside the valid window; reasons in staging's order). Anything else is assumed well-formed."""
    v = r.value
    if r.topic == "orders":
        if v.get("status") not in ORDER_STATUSES:
            raise UnmodelledInput(f"order {v.get('order_id')}: status {v.get('status')!r}")
        reasons = [_window_reason(_naive_utc(v["order_ts"]), "order_ts", r), _window_reason(r.kafka_ts, "event_ts", r)]
    elif r.topic == "events":
        business = _window_reason(_naive_utc(v["event_ts"]), "event_ts", r)
        kafka = _window_reason(r.kafka_ts, "kafka_ts", r)
        same_side = business and kafka and business.split(":")[0] == kafka.split(":")[0]
        reasons = [business, None if same_side else kafka]
    else:
        reasons = [_window_reason(r.kafka_ts, "event_ts", r)]
    return ";".join(x for x in reasons if x) or None


def _version_key(r: Received) -> tuple:
    """Newest last: Kafka timestamp, for orders the status' place in the lifecycle, then (partition, offset)."""
    status_rank = ORDER_STATUSES.index(r.value["status"]) + 1 if r.topic == "orders" else 0
    return (r.kafka_ts, status_rank, r.partition, r.offset)


def _content(r: Received) -> Any:
    """What tells two versions of a key apart (staging's content hash): the fields silver takes from them."""
    v = r.value
    if r.topic == "customers":
        return v.get("firstName"), v.get("lastName"), str(v.get("email") or "").strip().lower()
    if r.topic == "products":
        meta = v.get("meta") or {}
        return (v.get("title"), v.get("description"), str(v["price"]), v.get("category"), meta.get("createdAt"),
                meta.get("updatedAt"))
    if r.topic == "orders":
        return v["customer_id"], _naive_utc(v["order_ts"]), v["total_amount"], v["status"], json.dumps(v["items"], sort_keys=True)
    return json.dumps(v, sort_keys=True)  # events: the whole value (event_data is what the named fields leave)


def _tie_winners(versions: Sequence[Received]) -> list[int]:
    """For each version (newest first), the index of its tie group's winner: the group = the versions equal in
    every version key but (partition, offset), its winner the first of them (the highest coordinates)."""
    winners: list[int] = []
    for n, r in enumerate(versions):
        same_group = n > 0 and _version_key(r)[:2] == _version_key(versions[n - 1])[:2]
        winners.append(winners[-1] if same_group else n)
    return winners


def _versions(received: Iterable[Received], topic: str, conflicts: bool = False) -> dict[str, list[Received]]:
    """key -> its valid versions, newest first. With `conflicts` False, two versions with equal version keys
    and different content (a conflicting duplicate) are refused: UnmodelledInput (customers: see histories.py)."""
    out: dict[str, list[Received]] = defaultdict(list)
    for r in received:
        if r.topic == topic and intrinsic_reason(r) is None:
            out[str(r.value[KEY_FIELD[topic]])].append(r)
    for key, versions in out.items():
        versions.sort(key=_version_key, reverse=True)
        if conflicts:
            continue
        for n, w in enumerate(_tie_winners(versions)):
            if _content(versions[n]) != _content(versions[w]):
                raise UnmodelledInput(f"{topic} {key}: two different versions share the timestamp {versions[n].kafka_ts}")
    return out


def _arrival(r: Received) -> int:
    """The order bronze received the message in (its bronze_id; the offset where no bronze id is given)."""
    return r.bronze_id if r.bronze_id is not None else r.offset


def customers_by_arrival(received: Sequence[Received]) -> tuple[dict[str, Received], dict[str, list[Received]]]:
    """(held, waiting): the version of each customer silver holds, and the versions that wait for their email
    (pending `duplicate_email`), after the valid `customers` messages were received in bronze order.

    Email uniqueness is decided message by message, in the order bronze received them (docs/contracts.md):
    - a version older than the held one changes nothing (superseded; it only counts for created_at);
    - a newer one becomes a candidate, and then every customer with candidates (a "mover") gets the newest
      candidate whose email it can have, or keeps what it holds: deferred acceptance (Gale-Shapley), with
      movers proposing their candidates newest first and their held version last; an email held by a
      customer that is not moving is taken; among proposers of one email the customer holding it comes
      first, then the earlier-received claim (bronze order). The result does not depend on the order of the
      proposals, so a swap (A a->b, B b->a) or a chain applies as soon as its last message is received;
    - candidates older than the version a customer gets are superseded, newer ones keep waiting.
    Received one by one or all at once, the messages give the same result: no batch decides anything.
    """
    held: dict[str, Received] = {}
    waiting: dict[str, list[Received]] = defaultdict(list)
    holder: dict[str, str] = {}  # email -> customer holding it

    def email_of(r: Received) -> str:
        return str(r.value.get("email") or "").strip().lower()

    def settle() -> None:
        movers = sorted(cid for cid, versions in waiting.items() if versions)
        prefs = {cid: sorted(waiting[cid], key=_version_key, reverse=True) + ([held[cid]] if cid in held else [])
                 for cid in movers}
        nxt = dict.fromkeys(movers, 0)
        granted: dict[str, tuple[str, Received]] = {}  # email -> (customer, version)

        def priority(cid: str, r: Received) -> tuple:
            return (holder.get(email_of(r)) != cid, _arrival(r))

        queue = list(movers)
        while queue:
            cid = queue.pop(0)
            while nxt[cid] < len(prefs[cid]):
                r = prefs[cid][nxt[cid]]
                email = email_of(r)
                owner = holder.get(email)
                if owner is not None and owner != cid and owner not in nxt:
                    nxt[cid] += 1  # held by a customer that is not moving
                    continue
                current = granted.get(email)
                if current is None:
                    granted[email] = (cid, r)
                    break
                if priority(cid, r) < priority(*current):
                    granted[email] = (cid, r)
                    nxt[current[0]] += 1
                    queue.append(current[0])
                    break
                nxt[cid] += 1
        for cid in movers:
            if cid in held:
                holder.pop(email_of(held[cid]), None)
        for email, (cid, r) in granted.items():
            holder[email] = cid
            held[cid] = r
            waiting[cid] = [w for w in waiting[cid] if _version_key(w) > _version_key(r)]

    for r in sorted((r for r in received if r.topic == "customers" and intrinsic_reason(r) is None),
                    key=_arrival):
        cid = str(r.value["id"])
        if not _EMAIL.match(email_of(r)):
            raise UnmodelledInput(f"customer {cid}: invalid email {r.value.get('email')!r}")
        if cid in held and _version_key(r) <= _version_key(held[cid]):
            continue
        waiting[cid].append(r)
        settle()
    return held, {cid: versions for cid, versions in waiting.items() if versions}


def expected_gold(catalog: Mapping[str, Sequence[Mapping[str, Any]]], hours: Iterable[datetime],
                  settings: DeriveSettings = DEFAULT_SETTINGS) -> dict[str, list[tuple]]:
    """{gold table: rows sorted by key} with the columns of GOLD_COLUMNS, as psycopg returns them."""
    return gold_from_messages(published(catalog, hours, settings).by_topic)


def gold_from_messages(by_topic: Mapping[str, Sequence[tuple[datetime, dict[str, Any]]]]) -> dict[str, list[tuple]]:
    """Gold after every message of `by_topic` ({base topic: [(Kafka timestamp, value), ...]}, any order,
    re-sends included) went through the pipeline, in whatever batches: the business rules only."""
    received = [Received(topic, ts, value, offset=n)
                for topic, msgs in by_topic.items() for n, (ts, value) in enumerate(msgs)]
    tables = warehouse_from_messages(received)
    return {table: tables[f"gold.{table}"] for table in GOLD_COLUMNS}


def warehouse_from_messages(received: Sequence[Received]) -> dict[str, list[tuple]]:
    """Every silver and gold table (columns of WAREHOUSE_COLUMNS, rows sorted) and the quarantine
    (QUARANTINE_COLUMNS, bronze rows rejected or pending) after `received` went through the pipeline, in
    whatever batches. Rules (docs/contracts.md):
    - a message outside the timestamp window is rejected (intrinsic_reason); the others are valid versions;
    - products: the latest valid version wins; customers: the version `customers_by_arrival` grants (email
      uniqueness, first come first served), waiting versions pending `duplicate_email`; created_at = the
      first valid Kafka timestamp of the key, updated_at = the winner's; emails trimmed and lower-cased;
    - orders/events: the latest ADMISSIBLE version wins (its customer and products are in silver); newer
      versions wait as pending (reason pending_customer / pending_product, suffixed ':rejected' when the
      missing parent has a rejected message), older ones are superseded; created_at = the first valid
      Kafka timestamp of the key (orders) and updated_at the winner's;
    - conflicting duplicates (products, orders, events): the valid versions of a key equal in every version
      key but (partition, offset) form a tie group whose winner has the highest coordinates; a member with
      other content than the winner is rejected (conflicting_duplicate) unless the winner is pending, when
      it is judged like any other version. A loser is never the latest version (its winner is newer) nor
      the latest admissible one unless its winner is pending, so silver never holds one.
    """
    quarantine: list[tuple] = []
    rejected_keys: dict[str, set[str]] = defaultdict(set)
    for r in received:
        reason = intrinsic_reason(r)
        if reason:
            key = str(r.value[KEY_FIELD[r.topic]])
            quarantine.append((r.topic, key, reason, "rejected", r.bronze_id))
            rejected_keys[r.topic].add(key)

    customers: dict[str, dict[str, Any]] = {}
    held, waiting = customers_by_arrival(received)
    all_versions = _versions(received, "customers", conflicts=True)
    for cid, r in held.items():
        v = r.value
        customers[cid] = {"customer_id": cid, "first_name": v.get("firstName"), "last_name": v.get("lastName"),
                          "email": str(v["email"]).strip().lower(),
                          "created_at": min(x.kafka_ts for x in all_versions[cid]), "updated_at": r.kafka_ts}
    for cid, versions in waiting.items():
        quarantine += [("customers", cid, "duplicate_email", "pending", r.bronze_id) for r in versions]

    def conflicting(topic: str, key: str, versions: Sequence[Received], pending_above: int) -> None:
        """Quarantine the losers whose winner is not pending (the first `pending_above` versions are)."""
        for n, w in enumerate(_tie_winners(versions)):
            if w >= pending_above and _content(versions[n]) != _content(versions[w]):
                quarantine.append((topic, key, "conflicting_duplicate", "rejected", versions[n].bronze_id))

    for cid, versions in all_versions.items():  # the waiting versions are the newest ones
        conflicting("customers", cid, versions, pending_above=len(waiting.get(cid, ())))

    products: dict[str, dict[str, Any]] = {}
    for pid, versions in _versions(received, "products", conflicts=True).items():
        conflicting("products", pid, versions, pending_above=0)
        v = versions[0].value
        price = Decimal(str(v["price"]))
        if price < 0:
            raise UnmodelledInput(f"product {pid}: negative price")
        meta = v.get("meta") or {}
        products[pid] = {"product_id": pid, "name": v.get("title"), "description": v.get("description"),
                         "price": price, "category": v.get("category"),
                         "created_at": _naive_utc(meta["createdAt"]) if meta.get("createdAt") else None,
                         "updated_at": _naive_utc(meta["updatedAt"]) if meta.get("updatedAt") else None}

    def pending_reason(v: Mapping[str, Any], topic: str) -> str | None:
        reasons = []
        if v["customer_id"] not in customers:
            reasons.append("pending_customer" + (":rejected" if v["customer_id"] in rejected_keys["customers"] else ""))
        missing = [i["product_id"] for i in v.get("items", ()) if i["product_id"] not in products]
        if missing:
            reasons.append("pending_product" + (":rejected" if set(missing) & rejected_keys["products"] else ""))
        return ";".join(reasons) or None

    def latest_admissible(topic: str) -> dict[str, tuple[Received, datetime]]:
        """key -> (admitted version, first valid Kafka timestamp); the newer versions go to the quarantine."""
        out = {}
        for key, versions in _versions(received, topic, conflicts=True).items():
            pending = 0
            for r in versions:
                reason = pending_reason(r.value, topic)
                if reason is None:
                    out[key] = (r, min(x.kafka_ts for x in versions))
                    break
                quarantine.append((topic, key, reason, "pending", r.bronze_id))
                pending += 1
            conflicting(topic, key, versions, pending_above=pending)
        return out

    orders: dict[str, dict[str, Any]] = {}
    items: dict[str, dict[str, Any]] = {}
    for oid, (r, first_seen) in latest_admissible("orders").items():
        v = r.value
        total = Decimal(v["total_amount"])
        lines = sum((int(i["quantity"]) * Decimal(i["unit_price"]) for i in v["items"]), Decimal("0"))
        if lines != total:
            raise UnmodelledInput(f"order {oid}: total {total} != sum of lines {lines}")
        order_date = _naive_utc(v["order_ts"])
        orders[oid] = {"order_id": oid, "customer_id": v["customer_id"], "order_date": order_date,
                       "total_amount": total, "status": v["status"],
                       "customer_email": customers[v["customer_id"]]["email"],
                       "created_at": first_seen, "updated_at": r.kafka_ts}
        for i in v["items"]:
            qty, price = int(i["quantity"]), Decimal(i["unit_price"])
            items[i["order_item_id"]] = {"order_item_id": i["order_item_id"], "order_id": oid,
                                         "product_id": i["product_id"], "quantity": qty, "unit_price": price,
                                         "line_total": qty * price, "order_date": order_date,
                                         "customer_id": v["customer_id"], "created_at": first_seen}

    events: dict[str, dict[str, Any]] = {}
    events_daily: Counter[tuple[date, str]] = Counter()
    for eid, (r, _) in latest_admissible("events").items():
        v = r.value
        created = _naive_utc(v["event_ts"])
        events[eid] = {"event_id": eid, "customer_id": v["customer_id"], "event_type": v["event_type"],
                       "event_data": {k: x for k, x in v.items()
                                      if k not in ("event_id", "event_type", "customer_id", "event_ts")},
                       "created_at": created}
        events_daily[(created.date(), v["event_type"])] += 1

    orders_daily: dict[date, list] = {}
    for o in orders.values():
        day = orders_daily.setdefault(o["order_date"].date(), [0, Decimal("0")])
        day[0] += 1
        day[1] += o["total_amount"]

    def rows(table: str, records: Iterable[Mapping[str, Any]]) -> list[tuple]:
        cols = WAREHOUSE_COLUMNS[table]
        return sorted((tuple(r[c] for c in cols) for r in records), key=repr)

    return {
        "silver.customers": rows("silver.customers", customers.values()),
        "silver.products": rows("silver.products", products.values()),
        "silver.orders": rows("silver.orders", orders.values()),
        "silver.order_items": rows("silver.order_items", items.values()),
        "silver.events": rows("silver.events", events.values()),
        "gold.dim_customers": rows("gold.dim_customers", customers.values()),
        "gold.dim_products": rows("gold.dim_products", products.values()),
        "gold.fct_orders": rows("gold.fct_orders", orders.values()),
        "gold.fct_order_items": rows("gold.fct_order_items", items.values()),
        "gold.agg_orders_daily": sorted((d, n, rev) for d, (n, rev) in orders_daily.items()),
        "gold.agg_events_daily": sorted((d, t, n) for (d, t), n in events_daily.items()),
        "silver.quarantine": sorted(quarantine, key=repr),
    }


def actual_gold(conn) -> dict[str, list[tuple]]:
    """The same tables read from the warehouse (psycopg connection), same columns, same order."""
    out = {}
    for table, cols in GOLD_COLUMNS.items():
        select = ", ".join(f'"{c}"' for c in cols)
        out[table] = sorted(tuple(r) for r in conn.execute(f"select {select} from gold.{table}").fetchall())
    return out


def actual_tables(conn, columns: Mapping[str, Sequence[str]] = WAREHOUSE_COLUMNS) -> dict[str, list[tuple]]:
    """Like actual_gold for any schema-qualified tables (default: every table warehouse_from_messages derives)."""
    out = {}
    for table, cols in columns.items():
        select = ", ".join(f'"{c}"' for c in cols)
        out[table] = sorted((tuple(r) for r in conn.execute(f"select {select} from {table}").fetchall()), key=repr)
    return out


def diff(expected: Mapping[str, list[tuple]], actual: Mapping[str, list[tuple]], limit: int = 5,
         keys: Mapping[str, int] | None = None) -> list[str]:
    """Human-readable differences, table by table (empty when equal). `keys`: table -> number of leading key
    columns (default: the gold tables, GOLD_KEYS)."""
    keys = keys or {table: len(cols) for table, cols in GOLD_KEYS.items()}
    problems = []
    for table in keys:
        exp, act = expected.get(table, []), actual.get(table, [])
        if exp == act:
            continue
        nkey = keys[table]
        e_by = {r[:nkey]: r for r in exp}
        a_by = {r[:nkey]: r for r in act}
        missing = [e_by[k] for k in sorted(set(e_by) - set(a_by))]
        extra = [a_by[k] for k in sorted(set(a_by) - set(e_by))]
        changed = [(e_by[k], a_by[k]) for k in sorted(set(e_by) & set(a_by)) if e_by[k] != a_by[k]]
        problems.append(f"{table if '.' in table else 'gold.' + table}: expected {len(exp)} rows, got {len(act)}; missing {len(missing)} "
                        f"{missing[:limit]}, unexpected {len(extra)} {extra[:limit]}, different {len(changed)} "
                        f"{changed[:limit]}")
    return problems
