{#-
  The highest `column` of `relation` as a SQL literal of `sql_type` (`default` when the relation is missing
  or empty), read when the model runs. A literal - not a `(select max(...))` subquery - lets PostgreSQL see
  how few rows lie above the watermark and pick an index range scan whatever the size of the history; with
  a subquery it must guess (a third of the table) and may scan everything.
  In dbt unit tests (and at parse time) it stays a subquery, so a `this` fixture provides the watermark.
-#}
{% macro watermark(relation, column, sql_type, default) -%}
    {%- if execute and model.resource_type != 'unit_test' and relation is not none -%}
        {%- set rel = load_relation(relation) -%}
        {%- set value = none -%}
        {%- if rel is not none -%}
            {%- set value = run_query('select max(' ~ column ~ ')::text from ' ~ rel).columns[0].values()[0] -%}
        {%- endif -%}
        {%- if value is none -%}
            ({{ default }})::{{ sql_type }}
        {%- else -%}
            '{{ value }}'::{{ sql_type }}
        {%- endif -%}
    {%- else -%}
        (select coalesce(max({{ column }}), ({{ default }})::{{ sql_type }}) from {{ relation }})
    {%- endif -%}
{%- endmacro %}

{# Shorthands for the two kinds of watermark the models use. #}
{% macro ts_watermark(relation, column) -%}
    {{ watermark(relation, column, 'timestamp', "'-infinity'") }}
{%- endmacro %}
