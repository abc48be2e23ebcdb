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

with {{ latest_version_merge('stg_customers', 'customer_id', entity='customers', first_seen=true,
                              columns=['customer_id', 'first_name', 'last_name', 'email']) }}

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
