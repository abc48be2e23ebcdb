{#-
  Null-safe parsing of JSON values. Each macro returns NULL instead of raising when the input cannot be
  parsed, so one malformed message never fails a run: the caller turns the NULL into a quarantine reason.
  CASE is used (not AND) wherever a cast must only run after its guard: PostgreSQL does not promise to
  evaluate AND operands left to right, but it does evaluate CASE branches in order.
-#}

{# A JSON scalar id (string or number) as trimmed text; NULL for missing, null, empty, objects, arrays. #}
{% macro json_key(obj, key) -%}
    (case when jsonb_typeof({{ obj }} -> '{{ key }}') in ('string', 'number')
          then nullif(btrim({{ obj }} ->> '{{ key }}'), '') end)
{%- endmacro %}

{# A JSON string or number as text (NULL for other JSON types) - for free-text fields. #}
{% macro json_text(obj, key) -%}
    (case when jsonb_typeof({{ obj }} -> '{{ key }}') in ('string', 'number')
          then {{ obj }} ->> '{{ key }}' end)
{%- endmacro %}

{# Decimal text ('12.30', '-1', '1e3') -> numeric; anything else -> NULL. #}
{% macro try_numeric(text_expr) -%}
    (case when btrim({{ text_expr }}) ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$'
          then btrim({{ text_expr }})::numeric end)
{%- endmacro %}

{# Whole number text that fits an INTEGER ('2', '-3') -> integer; '2.5', '1e3', '' -> NULL. #}
{% macro try_integer(text_expr) -%}
    (case when btrim({{ text_expr }}) ~ '^[+-]?[0-9]{1,9}$' then btrim({{ text_expr }})::integer end)
{%- endmacro %}

{#-
  ISO-8601 timestamp text -> timestamp (UTC, without time zone). Accepts 'YYYY-MM-DDTHH:MM:SS[.ffffff]'
  with 'Z', '+HH:MM', '+HHMM', '+HH' or no zone (read as UTC). Calendar-invalid dates (2026-02-30), hour 24,
  leap seconds and anything else -> NULL. The regex bounds every field, and the day is checked against the
  month's length before the cast, so the cast itself can never raise.
-#}
{% macro try_timestamp(text_expr) -%}
    (case when btrim({{ text_expr }}) ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$'
          then case when substr(btrim({{ text_expr }}), 9, 2)::integer
                         <= extract(day from ((substr(btrim({{ text_expr }}), 1, 7) || '-01')::date
                                              + interval '1 month' - interval '1 day'))
                    then case when btrim({{ text_expr }}) ~ '(Z|[+-][0-9:]+)$'
                              then (btrim({{ text_expr }})::timestamptz at time zone 'UTC')
                              else btrim({{ text_expr }})::timestamp end
               end
     end)
{%- endmacro %}

{# Plausible e-mail address (one @, no spaces, a dot in the domain). Input is already lower-cased/trimmed. #}
{% macro is_valid_email(expr) -%}
    ({{ expr }} ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:].]+$')
{%- endmacro %}

{# A business timestamp "far in the future": later than ingestion + var('max_future_hours'). Uses the row's
   ingested_at (not the wall clock) so re-processing the same bronze rows always gives the same verdict. #}
{% macro is_far_future(ts_expr, ingested_at_expr='_ingested_at') -%}
    ({{ ts_expr }} > {{ ingested_at_expr }} + interval '{{ var("max_future_hours") | int }} hours')
{%- endmacro %}

{# A timestamp before the valid window: earlier than var('min_valid_timestamp') (dbt_project.yml). #}
{% macro is_far_past(ts_expr) -%}
    ({{ ts_expr }} < '{{ var("min_valid_timestamp") }}'::timestamp)
{%- endmacro %}

{# The clock every audit column uses: the transaction start time, in UTC, without time zone. #}
{% macro run_ts() -%}
    ((now() at time zone 'UTC')::timestamp)
{%- endmacro %}

{# Join reasons, skipping the NULL ones; NULL when there is none. #}
{% macro reasons(items) -%}
    nullif(concat_ws(';'{% for item in items %}, {{ item }}{% endfor %}), '')
{%- endmacro %}

{#- Why a required field is unusable when its parsed value is NULL: 'invalid_type:<label>' when the JSON
    value is there but an object, array or boolean (e.g. "price": {"amount": 1}, "quantity": true),
    'missing_field:<label>' when it is absent, null or (for keys) empty. `label` defaults to the key. #}
{% macro absent_reason(obj, key, label=none) -%}
    (case when jsonb_typeof({{ obj }} -> '{{ key }}') in ('object', 'array', 'boolean')
          then 'invalid_type:{{ label or key }}' else 'missing_field:{{ label or key }}' end)
{%- endmacro %}

{#- 'unsupported_schema_version' when the value carries a `schema_version` other than 1 (docs/contracts.md:
    orders and events carry 1; customers and products, DummyJSON's own objects, carry none). A missing
    schema_version is version 1. Bronze already quarantines messages whose schema_version *header* is not 1;
    this catches a producer that changed the value but not the header. #}
{% macro schema_version_reason(obj) -%}
    (case when {{ obj }} ? 'schema_version'
               and coalesce({{ obj }} ->> 'schema_version', '') not in ('1', '1.0')
          then 'unsupported_schema_version' end)
{%- endmacro %}

{#- ':rejected' when `parent_rejected` (a boolean SQL condition: the missing parent has versions in staging,
    all of them rejected - otherwise it would be in silver), else ''. Appended to pending_customer /
    pending_product so the quarantine says why the parent is missing: 'pending_customer:rejected' waits
    for a corrected customer (see the customer's own quarantine row), 'pending_customer' for one never seen.
    Evaluated only for pending rows (inside their CASE branch), with the staging tables' partial index on
    the key of their rejected rows. -#}
{% macro parent_rejected_suffix(parent_rejected) -%}
    (case when {{ parent_rejected }} then ':rejected' else '' end)
{%- endmacro %}
