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

with candidates as (
    select *
    from {{ ref('stg_orders') }}
    where _status = 'admitted'
    {%- if is_incremental() %}
      and _decided_at > {{ ts_watermark(this, '_decided_at') }}
    {%- endif %}
),

keys as (
    select order_id, min(_first_seen_ts) as first_seen_ts, max(_decided_at) as decided_at
    from candidates
    group by order_id
),

existing as (
    {%- if is_incremental() %}
    select t.*
    from keys as k
    cross join lateral (  -- one primary-key probe per key, whatever the size of the table
        select * from {{ this }} as e where e.order_id = k.order_id limit 1
    ) as t
    {%- else %}
    select null::varchar as order_id, null::varchar as customer_id, null::timestamp as order_date,
           null::numeric as total_amount, null::varchar as status, null::timestamp as created_at,
           null::bigint as _bronze_id, null::timestamp as _event_ts, null::integer as _kafka_partition,
           null::bigint as _kafka_offset, null::timestamp as _loaded_at
    where false
    {%- endif %}
),

versions as (
    select order_id, customer_id, order_date, total_amount, status, _bronze_id, _event_ts,
           _partition as _kafka_partition, _offset as _kafka_offset, 1 as _source_rank
    from candidates
    union all
    select order_id, customer_id, order_date, total_amount, status, _bronze_id, _event_ts,
           _kafka_partition, _kafka_offset, 0 as _source_rank
    from existing
),

winner as (
    select distinct on (order_id) *
    from versions
    order by order_id, _event_ts desc, _kafka_partition desc, _kafka_offset desc, _source_rank asc
)

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
