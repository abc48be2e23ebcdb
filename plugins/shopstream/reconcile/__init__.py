"""Reconcile logical hours across the layers: Kafka (published) -> bronze -> silver -> gold.

For every reconciled hour H and entity (customers, products, orders, order_items, events) it counts
distinct *keys* (the contract's message keys: user/product id, order_id, event_id; order items by
order_item_id inside the latest version of each order), because a retried or backfilled hour legitimately
republishes the same keys:

    published(H)            = bronze keys(H) + bronze quarantine keys(H)          Kafka  -> bronze
    bronze keys(H)          = silver rows(H) + silver quarantine(H)               bronze -> silver
    silver rows(H)          = gold rows(H)   (dims, fct_orders, fct_order_items)  silver -> gold

where "(H)" means: the keys whose bronze rows carry a Kafka timestamp inside [H, H+1h) (the contract puts
every message's timestamp inside its logical hour), followed to silver/gold by key. Silver quarantine counts
a key when one of its bronze rows of the hour is listed in `silver.quarantine` (rejected or pending - a
pending order waits for its customer/product and is *not* lost). For every UTC day the hours touch it also
checks the aggregates: silver orders = gold.fct_orders = gold.agg_orders_daily.orders (and revenue), silver
events per type = gold.agg_events_daily.

Versions, not only keys: per key of the hour, silver must hold the latest version staging admitted (the newest
`staging.stg_<entity>` row with `_status = 'admitted'` by the models' version order, compared by `_bronze_id`),
and gold must show silver's row; the keys that do not are a `version` mismatch (a count that adds up can still
hide a key held in an old version). `published(H)` is what the extract task recorded as published
(`ops.extract_published`), never a re-derivation from the generator. A mismatch fails the task with the whole
table (`ReconciliationError`), so on-call sees at which layer the keys went missing; the results are kept in
`ops.reconcile_results` (`shopstream.ops`) for the Pipeline health dashboard.

One job per module:
- `checks`: the pure logic - the counts of an hour/day, the equations, the mismatches, the table, the summary;
- `warehouse`: the SQL that counts bronze/silver/gold and finds keys in a wrong version, and
  `reconcile(conn, hours, expected)` (count, compare, log, raise);
- `windows`: which hours a run reconciles - the chained asset-event windows and the extras that carry them
  (what the bronze DAG's `publish` and the dbt DAG's `reconcile` write into their Asset events);
- `published`: the expected counts - what extract recorded as published (`ops.extract_published`, else the asset
  events' counts);
- `task`: the Airflow glue of the dbt DAG's `reconcile` task;
- `cli` (`python -m shopstream.reconcile --hour 2026-11-27T13:00:00Z`): the same table without Airflow.
"""
