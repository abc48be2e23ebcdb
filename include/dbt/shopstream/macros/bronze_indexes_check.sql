{#-
  on-run-start: warn (in the dbt log) when bronze.raw_events lacks the indexes the staging increments rely on
  (include/sql/dbt/001_bronze_indexes.sql). dbt still works without them, but every increment then scans
  the whole bronze history. A catalog query only: it takes no lock on bronze.
-#}
{% macro warn_if_bronze_indexes_missing() -%}
    {%- if execute -%}
        {%- set wanted = ['raw_events_topic_bronze_id_idx', 'raw_events_topic_ingested_at_idx'] -%}
        {%- set result = run_query(
            "select to_regclass('bronze.raw_events') is not null, "
            ~ "coalesce(array_agg(indexname::text), '{}') from pg_indexes "
            ~ "where schemaname = 'bronze' and tablename = 'raw_events'") -%}
        {%- set row = result.rows[0] -%}
        {%- if row[0] -%}
            {%- set missing = wanted | reject('in', row[1]) | list -%}
            {%- if missing -%}
                {{ log("WARNING: bronze.raw_events lacks " ~ missing | join(', ')
                       ~ " - apply include/sql/dbt/001_bronze_indexes.sql, or every increment scans all of bronze",
                       info=True) }}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
