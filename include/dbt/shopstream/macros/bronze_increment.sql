{#-
  The bronze rows of one topic that the calling staging model has not staged yet.

  Watermark: the highest _bronze_id already staged (the staging table has a unique index on _bronze_id,
  and every bronze row of the topic becomes exactly one staging row, so the watermark is exact).

  Lookback: bronze_id comes from an identity, so a loader transaction can commit a LOWER id after this
  model has read a higher one. Such a row's transaction was still open when the previous staging run read
  bronze (at its _staged_at), so - if no loader transaction lasts longer than `bronze_lookback_minutes` - it
  was ingested (ingested_at = its transaction's start) less than that long before the previous run's
  _staged_at. So besides `bronze_id > watermark` we re-read the rows at or below the watermark ingested
  after `max(_staged_at) - bronze_lookback_minutes` (optionally also the last `bronze_lookback_ids` ids)
  and keep those not staged yet. Both branches use indexes (bronze (topic, bronze_id) and (topic,
  ingested_at, bronze_id), include/sql/dbt/001_bronze_indexes.sql), so the cost follows the increment,
  not the history. Watermarks are inlined as literals (macros/watermark.sql) so the planner sees how few
  rows qualify.

  Upper bound: when the bronze DDL provides bronze.stable_high_watermark() (include/sql/bronze/004_*: the
  loader's barrier, below which no loader transaction is still in flight), rows above it are left for the
  next run, so with a loader that follows that protocol no row can commit below the watermark at all; the
  lookback stays as the safety net for any other writer.
-#}

{#- bronze.stable_high_watermark() as a literal, or none when the function does not exist. #}
{% macro bronze_upper_bound() -%}
    {%- if execute and model.resource_type != 'unit_test' -%}
        {%- set found = run_query("select to_regprocedure('bronze.stable_high_watermark()') is not null").columns[0].values()[0] -%}
        {%- if found -%}
            {{ return(run_query("select bronze.stable_high_watermark()").columns[0].values()[0]) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{% macro bronze_increment(topic) -%}
    {#- The topic's Kafka name(s): SHOPSTREAM_TOPIC_<NAME> renames a topic, as in the extract and bronze stages. -#}
    {%- set topic_in = "'" ~ ([topic, env_var('SHOPSTREAM_TOPIC_' ~ topic | upper, topic)] | unique | join("', '")) ~ "'" -%}
    {%- set columns -%}
        b.bronze_id, b.topic, b.record_key, b.record_value, b."partition", b."offset", b.event_ts, b.ingested_at
    {%- endset -%}
    {%- set upper = bronze_upper_bound() -%}
    {%- set upper_sql = (" and b.bronze_id <= " ~ upper) if upper is not none else "" -%}
    {%- if is_incremental() %}
    {%- set wm_id = watermark(this, '_bronze_id', 'bigint', '0') %}
    {%- set wm_staged = ts_watermark(this, '_staged_at') %}
    select {{ columns }}
    from {{ source('bronze', 'raw_events') }} as b
    where b.topic in ({{ topic_in }})
      and b.bronze_id > {{ wm_id }}{{ upper_sql }}
    union all
    select {{ columns }}
    from {{ source('bronze', 'raw_events') }} as b
    left join lateral (  -- already staged? (a probe of the unique _bronze_id index)
        select true as staged from {{ this }} as s where s._bronze_id = b.bronze_id limit 1
    ) as s on true
    where b.topic in ({{ topic_in }})
      and s.staged is null
      and b.bronze_id <= {{ wm_id }}
      and (b.ingested_at >= {{ wm_staged }} - interval '{{ var("bronze_lookback_minutes") | int }} minutes'
           {%- if var("bronze_lookback_ids") | int > 0 %}
           or b.bronze_id > {{ wm_id }} - {{ var("bronze_lookback_ids") | int }}
           {%- endif %})
    {%- else %}
    select {{ columns }}
    from {{ source('bronze', 'raw_events') }} as b
    where b.topic in ({{ topic_in }}){{ upper_sql }}
    {%- endif %}
{%- endmacro %}
