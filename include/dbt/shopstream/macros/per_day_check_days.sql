{#-
  The days a per-day check of a daily aggregate compares (tests/generic/orders_per_day_match.sql,
  events_per_day_match.sql), as the rows `day` of a select. The aggregate `model` (day column `model_day`)
  recomputes only the days an increment touched, so the check looks at those days from both sides:
  - 'batch' (var test_scope, the default): the days the aggregate wrote in its latest run (its _src_loaded_at
    watermark), and every day, current (`source_day`) or earlier (the array column `source_past_days`), of the
    rows `source` wrote in its latest run (its `source_loaded_at` watermark): a day a row left is checked too;
  - 'all': every day of both.
-#}
{% macro per_day_check_days(model, model_day, source, source_loaded_at, source_day, source_past_days) -%}
{%- set latest_batch_only = var('test_scope', 'batch') != 'all' %}
{%- set source_batch = source_loaded_at ~ " >= " ~ ts_watermark(source, source_loaded_at) if latest_batch_only else "true" %}
    select {{ model_day }} as day from {{ model }}
    {%- if latest_batch_only %} where _src_loaded_at >= {{ ts_watermark(model, '_src_loaded_at') }}{% endif %}
    union
    select {{ source_day }}::date from {{ source }} where {{ source_batch }}
    union
    select d from {{ source }} as s cross join unnest(s.{{ source_past_days }}) as d where {{ source_batch }}
{%- endmacro %}
