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

with {{ latest_version_merge('stg_events', 'event_id', entity='events',
                              columns=['event_id', 'customer_id', 'event_type', 'event_data', 'created_at']) }}

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
