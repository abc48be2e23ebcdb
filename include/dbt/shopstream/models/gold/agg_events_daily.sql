{#- Events per day (of created_at) and event type. Incremental: only the days the increment touched are
    recomputed (all types of each such day) from silver.events - the current day of every event written
    since the watermark and every day it was counted on before (events._event_dates) - and replaced
    (replace_by_key on event_date). A day left without events gets a placeholder row (events = 0) so its
    old rows are deleted; placeholders are not inserted (replace_keep). -#}
{{
  config(
    materialized='incremental',
    incremental_strategy='replace_by_key',
    unique_key='event_date',
    replace_keep='events > 0',
  )
}}

with days as (
    {%- if is_incremental() %}
    select distinct d as day
    from {{ ref('events') }} as e
    cross join unnest(e._event_dates) as d
    where e._loaded_at > {{ ts_watermark(this, '_src_loaded_at') }}
    {%- else %}
    select distinct created_at::date as day
    from {{ ref('events') }}
    {%- endif %}
),

counts as (
    select
        d.day as event_date,
        e.event_type,
        count(*) as events,
        max(e._loaded_at) as _src_loaded_at
    from days as d
    cross join lateral (  -- an index range scan on events(created_at) per day
        select t.event_type, t._loaded_at
        from {{ ref('events') }} as t
        where t.created_at >= d.day and t.created_at < d.day + 1
        offset 0
    ) as e
    group by d.day, e.event_type
)

select
    event_date::date as event_date,
    event_type::varchar as event_type,
    events::integer as events,
    _src_loaded_at::timestamp as _src_loaded_at
from counts
{%- if is_incremental() %}
union all
select d.day::date, ''::varchar, 0::integer, null::timestamp
from days as d
where not exists (select 1 from counts as c where c.event_date = d.day)
{%- endif %}
