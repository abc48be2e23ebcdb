{#-
  Generic tests on the big incremental tables are configured with `where: "latest_batch:<column>"`: they
  then check only the rows the latest run wrote (those with the highest <column>: _loaded_at,
  _src_loaded_at or _staged_at), so a run's test cost follows the increment, not the history. The
  watermark is read when the test runs and inlined as a literal (so PostgreSQL uses the column's index).
  `--vars '{test_scope: all}'` checks every row instead. The warehouse constraints (PRIMARY KEY, UNIQUE,
  FOREIGN KEY, NOT NULL, CHECK) hold for every row regardless.
  Any other `where` works as in dbt.
-#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and where.startswith('latest_batch:') -%}
        {%- set column = where.split(':', 1)[1] | trim -%}
        {%- if var('test_scope', 'batch') == 'all' -%}
            {%- do return(relation) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ column }} >= {{ watermark(relation, column, 'timestamp', "'-infinity'") }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- elif where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
