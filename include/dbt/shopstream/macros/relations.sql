{#- A relation by schema and name if it exists in the warehouse, else none (also none at parse time).
    Used to read the previous state of a model that is *downstream* in the DAG (a ref would be a cycle). -#}
{% macro existing_relation(schema, identifier) -%}
    {%- if execute -%}
        {{ return(adapter.get_relation(database=target.database, schema=schema, identifier=identifier)) }}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{#-
  Post-hook: create an index unless `relation` already has one whose name starts with
  "<table>_<suffix>". The name gets a timestamp so a full refresh (which renames the old table to
  __dbt_backup with its indexes and drops it at the end) never collides with the old table's index name.
  Used for partial indexes, which dbt's `indexes` config cannot express.
-#}
{% macro ensure_index(relation, suffix, definition) -%}
    {%- set prefix = (relation.identifier ~ '_' ~ suffix)[:40] -%}
    do $ensure_index$
    begin
        if not exists (
            select 1 from pg_indexes
            where schemaname = '{{ relation.schema }}' and tablename = '{{ relation.identifier }}'
              and indexname like '{{ prefix }}\_%'
        ) then
            execute format('create index %I on {{ relation }} {{ definition | replace("'", "''") }}',
                           '{{ prefix }}_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS'));
        end if;
    end
    $ensure_index$
{%- endmacro %}

{#- Indexes every staging table needs (post-hook, before the hooks that use them). The unique _bronze_id
    index comes from `indexes`. `key`: the entity key column, indexed with _event_ts for the tie groups of
    macros/conflicting_duplicates.sql (its post-hook also finds this run's rows by _decided_at).
    `rejected_key`: the entity key of a parent table (customers, products), indexed for its rejected rows:
    a pending order/event looks up whether its missing parent was rejected (macros/parsing.sql). -#}
{% macro staging_indexes(relation, key=none, rejected_key=none) -%}
    {{ ensure_index(relation, 'admitted', "(_decided_at) where _status = 'admitted'") }};
    {{ ensure_index(relation, 'pending', "(_bronze_id) where _status = 'pending'") }};
    {{ ensure_index(relation, 'quarantined', "(_bronze_id) where _status in ('rejected', 'pending')") }};
    {{ ensure_index(relation, 'staged', "(_staged_at)") }}
    {%- if key %};
    {{ ensure_index(relation, 'decided', "(_decided_at)") }};
    {{ ensure_index(relation, 'key', "(" ~ key ~ ", _event_ts)") }}
    {%- endif %}
    {%- if rejected_key %};
    {{ ensure_index(relation, 'rejected_key', "(" ~ rejected_key ~ ") where _status = 'rejected'") }}
    {%- endif %}
{%- endmacro %}
