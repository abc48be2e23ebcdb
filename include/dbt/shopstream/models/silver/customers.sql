{#- Latest admitted version of each customer (see _silver.yml). Incremental: consumes the staging rows
    admitted since its own watermark (max _decided_at) and upserts; an older late version never overwrites
    a newer one, it can only lower created_at. -#}
{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='customer_id',
    indexes=[{'columns': ['_decided_at']}, {'columns': ['_loaded_at']}, {'columns': ['_email_changed_at']}],
  )
}}

with candidates as (
    select *
    from {{ ref('stg_customers') }}
    where _status = 'admitted'
    {%- if is_incremental() %}
      and _decided_at > {{ ts_watermark(this, '_decided_at') }}
    {%- endif %}
),

keys as (
    select customer_id, min(_first_seen_ts) as first_seen_ts, max(_decided_at) as decided_at
    from candidates
    group by customer_id
),

existing as (
    {%- if is_incremental() %}
    select t.*
    from keys as k
    cross join lateral (  -- one primary-key probe per key, whatever the size of the table
        select * from {{ this }} as e where e.customer_id = k.customer_id limit 1
    ) as t
    {%- else %}
    select null::varchar as customer_id, null::varchar as first_name, null::varchar as last_name,
           null::varchar as email, null::timestamp as created_at, null::bigint as _bronze_id,
           null::timestamp as _event_ts, null::integer as _kafka_partition, null::bigint as _kafka_offset,
           null::timestamp as _email_changed_at, null::timestamp as _loaded_at
    where false
    {%- endif %}
),

versions as (
    select customer_id, first_name, last_name, email, _bronze_id, _event_ts,
           _partition as _kafka_partition, _offset as _kafka_offset, 1 as _source_rank
    from candidates
    union all
    select customer_id, first_name, last_name, email, _bronze_id, _event_ts,
           _kafka_partition, _kafka_offset, 0 as _source_rank
    from existing
),

winner as (
    select distinct on (customer_id) *
    from versions
    order by customer_id, _event_ts desc, _kafka_partition desc, _kafka_offset desc, _source_rank asc
)

select
    w.customer_id::varchar as customer_id,
    w.first_name::varchar as first_name,
    w.last_name::varchar as last_name,
    w.email::varchar as email,
    least(e.created_at, k.first_seen_ts)::timestamp as created_at,
    w._event_ts::timestamp as updated_at,
    w._bronze_id::bigint as _bronze_id,
    w._event_ts::timestamp as _event_ts,
    w._kafka_partition::integer as _kafka_partition,
    w._kafka_offset::bigint as _kafka_offset,
    k.decided_at::timestamp as _decided_at,
    (case when e.customer_id is null or e.email is distinct from w.email then {{ run_ts() }}
          else e._email_changed_at end)::timestamp as _email_changed_at,
    (case when e.customer_id is null or w._source_rank = 1 or k.first_seen_ts < e.created_at
          then {{ run_ts() }} else e._loaded_at end)::timestamp as _loaded_at
from winner as w
join keys as k on k.customer_id = w.customer_id
left join existing as e on e.customer_id = w.customer_id
