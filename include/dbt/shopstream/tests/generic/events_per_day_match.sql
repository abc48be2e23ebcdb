{#-
  On agg_events_daily (`model`) against silver.events (`events`): per day of created_at and event_type, events =
  the number of silver events; a (day, type) missing on either side fails. The aggregate recomputes only the
  days an increment touched, so a day it forgot (an event moved to another day, the old day kept its count)
  shows here.
  Which days (var test_scope): macros/per_day_check_days.sql; an event's earlier days are its _event_dates.
-#}
{% test events_per_day_match(model, events) %}
with days as (
{{ per_day_check_days(model, 'event_date', events, '_loaded_at', 'created_at', '_event_dates') }}
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
