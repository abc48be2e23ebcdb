{#-
  Flags (severity warn, see _staging.yml) the staged orders/events whose Kafka timestamp contradicts the
  message: outside the value's `logical_hour` ([hour, hour + 1 h), docs/contracts.md) while the value's own
  business time (`time_column`: order_date, created_at) is inside it - a producer whose clock or timestamp
  setting is wrong. Bronze keeps only the value, so the value's logical_hour stands for the header (the
  extractor writes the same hour in both; customers and products carry none).
  A flag, not a quarantine: the Kafka timestamp orders the versions and the business time is in the value,
  so the row is still right; and a correction that moves order_ts/event_ts to another hour keeps the hour it
  was first derived in while its Kafka timestamp follows the new time - rejecting would drop valid
  corrections. Rows rejected anyway are not listed.
-#}
{% test kafka_ts_within_logical_hour(model, time_column) %}
select s._bronze_id, s._event_ts as kafka_ts, s.{{ time_column }} as business_ts, h.logical_hour
from (select * from {{ model }}) as s
join {{ source('bronze', 'raw_events') }} as b on b.bronze_id = s._bronze_id
cross join lateral (
    select {{ try_timestamp("(b.record_value ->> 'logical_hour')") }} as logical_hour
) as h
where s._status <> 'rejected'
  and h.logical_hour is not null
  and not (s._event_ts >= h.logical_hour and s._event_ts < h.logical_hour + interval '1 hour')
  and s.{{ time_column }} >= h.logical_hour and s.{{ time_column }} < h.logical_hour + interval '1 hour'
{% endtest %}
