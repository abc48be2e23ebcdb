{#- Latest admitted version of each order (see _silver.yml). Only versions whose customer and products
    are in silver are admitted by staging.stg_orders, so the foreign keys hold. Incremental upsert; an
    older late version never overwrites a newer one, it can only lower created_at. -#}
{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='order_id',
    indexes=[{'columns': ['_decided_at']}, {'columns': ['_loaded_at']}, {'columns': ['customer_id']}],
  )
}}

with {{ latest_version_merge('stg_orders', 'order_id', entity='orders', first_seen=true,
                              columns=['order_id', 'customer_id', 'order_date', 'total_amount', 'status']) }}

select
    w.order_id::varchar as order_id,
    w.customer_id::varchar as customer_id,
    w.order_date::timestamp as order_date,
    w.total_amount::numeric as total_amount,
    w.status::varchar as status,
    least(e.created_at, k.first_seen_ts)::timestamp as created_at,
    w._event_ts::timestamp as updated_at,
    w._bronze_id::bigint as _bronze_id,
    w._event_ts::timestamp as _event_ts,
    w._kafka_partition::integer as _kafka_partition,
    w._kafka_offset::bigint as _kafka_offset,
    k.decided_at::timestamp as _decided_at,
    (case when e.order_id is null or w._source_rank = 1 or k.first_seen_ts < e.created_at
          then {{ run_ts() }} else e._loaded_at end)::timestamp as _loaded_at
from winner as w
join keys as k on k.order_id = w.order_id
left join existing as e on e.order_id = w.order_id
