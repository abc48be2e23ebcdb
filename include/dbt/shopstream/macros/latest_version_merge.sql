{#-
  The latest-version-wins merge every silver entity model shares (customers, products, orders, events).
  Emits the CTEs `candidates`, `keys`, `existing`, `versions` and `winner` (to follow a `with`):
    candidates - the staging rows of `staging_model` admitted since this model's watermark (max _decided_at);
    keys       - one row per key of the increment: decided_at (the new watermark) and, with
                 `first_seen=true`, first_seen_ts (the earliest _first_seen_ts, for created_at);
    existing   - the rows this table already holds for those keys (one primary-key probe per key, whatever
                 the size of the table; no rows on the first run and on a full refresh);
    versions   - candidates and existing rows in one shape (`columns` + the version's Kafka coordinates);
    winner     - per key, the latest version by `version_order(entity)` (macros/version_order.sql); on a
                 complete tie the row silver already holds stays (_source_rank 0), so re-running the same
                 increment changes nothing.
  The model's final select joins winner, keys and existing and decides its audit columns.
-#}
{% macro latest_version_merge(staging_model, key, columns, entity, first_seen=false) -%}
candidates as (
    select *
    from {{ ref(staging_model) }}
    where _status = 'admitted'
    {%- if is_incremental() %}
      and _decided_at > {{ ts_watermark(this, '_decided_at') }}
    {%- endif %}
),

keys as (
    select {{ key }},{% if first_seen %} min(_first_seen_ts) as first_seen_ts,{% endif %} max(_decided_at) as decided_at
    from candidates
    group by {{ key }}
),

existing as (
    {%- if is_incremental() %}
    select t.*
    from keys as k
    cross join lateral (  -- one primary-key probe per key, whatever the size of the table
        select * from {{ this }} as e where e.{{ key }} = k.{{ key }} limit 1
    ) as t
    {%- else %}
    {#- no rows, typed like the table (the model's contract columns) #}
    select
        {%- for column in model.columns.values() %}
        null::{{ column.data_type }} as {{ column.name }}{{ "," if not loop.last }}
        {%- endfor %}
    where false
    {%- endif %}
),

versions as (
    select {{ columns | join(', ') }}, _bronze_id, _event_ts,
           _partition as _kafka_partition, _offset as _kafka_offset, 1 as _source_rank
    from candidates
    union all
    select {{ columns | join(', ') }}, _bronze_id, _event_ts,
           _kafka_partition, _kafka_offset, 0 as _source_rank
    from existing
),

winner as (
    select distinct on ({{ key }}) *
    from versions
    order by {{ key }}, {{ version_order(entity, '_kafka_partition', '_kafka_offset') }}, _source_rank asc
)
{%- endmacro %}
