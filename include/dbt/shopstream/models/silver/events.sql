{#- Latest admitted version of each clickstream event (see _silver.yml). Incremental upsert; an older
    late version never overwrites a newer one. _event_dates keeps every day the event has been counted
    on, so gold.agg_events_daily can recompute the day an event moved away from. -#}
{#- post_hook: a covering index: gold.agg_events_daily recounts a day with an index-only scan. #}
{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='event_id',
    indexes=[{'columns': ['_decided_at']}, {'columns': ['_loaded_at']}],
    post_hook="{{ ensure_index(this, 'day', '(created_at) include (event_type, _loaded_at)') }}",
  )
}}

with candidates as (
    select *
    from {{ ref('stg_events') }}
    where _status = 'admitted'
    {%- if is_incremental() %}
      and _decided_at > {{ ts_watermark(this, '_decided_at') }}
    {%- endif %}
),

keys as (
    select event_id, max(_decided_at) as decided_at
    from candidates
    group by event_id
),

existing as (
    {%- if is_incremental() %}
    select t.*
    from keys as k
    cross join lateral (  -- one primary-key probe per key, whatever the size of the table
        select * from {{ this }} as e where e.event_id = k.event_id limit 1
    ) as t
    {%- else %}
    select null::varchar as event_id, null::varchar as customer_id, null::varchar as event_type,
           null::jsonb as event_data, null::timestamp as created_at, null::bigint as _bronze_id,
           null::timestamp as _event_ts, null::integer as _kafka_partition, null::bigint as _kafka_offset,
           null::timestamp as _loaded_at, null::date[] as _event_dates
    where false
    {%- endif %}
),

versions as (
    select event_id, customer_id, event_type, event_data, created_at, _bronze_id, _event_ts,
           _partition as _kafka_partition, _offset as _kafka_offset, 1 as _source_rank
    from candidates
    union all
    select event_id, customer_id, event_type, event_data, created_at, _bronze_id, _event_ts,
           _kafka_partition, _kafka_offset, 0 as _source_rank
    from existing
),

winner as (
    select distinct on (event_id) *
    from versions
    order by event_id, _event_ts desc, _kafka_partition desc, _kafka_offset desc, _source_rank asc
)

select
    w.event_id::varchar as event_id,
    w.customer_id::varchar as customer_id,
    w.event_type::varchar as event_type,
    w.event_data::jsonb as event_data,
    w.created_at::timestamp as created_at,
    w._bronze_id::bigint as _bronze_id,
    w._event_ts::timestamp as _event_ts,
    w._kafka_partition::integer as _kafka_partition,
    w._kafka_offset::bigint as _kafka_offset,
    k.decided_at::timestamp as _decided_at,
    (case when e.event_id is null or w._source_rank = 1 then {{ run_ts() }}
          else e._loaded_at end)::timestamp as _loaded_at,
    (array(
        select distinct d
        from unnest(coalesce(e._event_dates, '{}'::date[]) || w.created_at::date) as d
        order by d
    ))::date[] as _event_dates
from winner as w
join keys as k on k.event_id = w.event_id
left join existing as e on e.event_id = w.event_id
