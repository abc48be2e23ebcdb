{#-
  On agg_events_daily (`model`) against silver.events (`events`): per day of created_at and event_type, events =
  the number of silver events; a (day, type) missing on either side fails. The aggregate recomputes only the
  days an increment touched, so a day it forgot (an event moved to another day, the old day kept its count)
  shows here.
  Scope (var test_scope): 'batch' checks the days of the aggregate's latest run and every day, current or
  earlier (_event_dates), of the events silver wrote in its latest run; 'all' every day.
-#}
{% test events_per_day_match(model, events) %}
{%- set latest_batch_only = var('test_scope', 'batch') != 'all' %}
{%- set events_batch = "_loaded_at >= " ~ ts_watermark(events, '_loaded_at') if latest_batch_only else "true" %}
with days as (
    select event_date as day from {{ model }}
    {%- if latest_batch_only %} where _src_loaded_at >= {{ ts_watermark(model, '_src_loaded_at') }}{% endif %}
    union
    select created_at::date from {{ events }} where {{ events_batch }}
    union
    select d from {{ events }} as e cross join unnest(e._event_dates) as d where {{ events_batch }}
),

silver_counts as (
    select d.day as event_date, e.event_type, count(*) as events
    from days as d
    join {{ events }} as e on e.created_at >= d.day and e.created_at < d.day + 1
    group by d.day, e.event_type
),

gold_counts as (
    select a.event_date, a.event_type, a.events
    from days as d
    join {{ model }} as a on a.event_date = d.day
)

select coalesce(g.event_date, s.event_date) as event_date, coalesce(g.event_type, s.event_type) as event_type,
       g.events as gold_events, s.events as silver_events
from gold_counts as g
full join silver_counts as s on s.event_date = g.event_date and s.event_type = g.event_type
where g.events is distinct from s.events
{% endtest %}
