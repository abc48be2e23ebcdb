{#-
  One row per bronze `products` message: parsed, validated, decided (_status rejected / superseded /
  admitted, as in stg_customers). silver.products takes the admitted versions that are newer than its own.
  Conflicting duplicates (same Kafka timestamp, other content) are decided by the post-hook
  relabel_conflicting_duplicates (macros/conflicting_duplicates.sql), also across runs: its loser is rejected
  whichever run brought it or its winner.
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['_bronze_id'], 'unique': true}],
    post_hook=["{{ staging_indexes(this, key='product_id', rejected_key='product_id') }}",
               "{{ relabel_conflicting_duplicates(this, 'product_id', 'products') }}",
               "{{ reject_rate_gate(this) }}"],
  )
}}

with src as (
    {{ bronze_increment('products') }}
),

parsed as (
    select
        bronze_id as _bronze_id,
        topic as _topic,
        "partition" as _partition,
        "offset" as _offset,
        record_key as _record_key,
        event_ts as _event_ts,
        ingested_at as _ingested_at,
        record_value as _value,
        {{ json_key('record_value', 'id') }} as product_id,
        {{ json_text('record_value', 'title') }} as name,
        {{ json_text('record_value', 'description') }} as description,
        {{ json_text('record_value', 'price') }} as _price_raw,
        {{ json_text('record_value', 'category') }} as category,
        {{ json_text("record_value -> 'meta'", 'createdAt') }} as _created_raw,
        {{ json_text("record_value -> 'meta'", 'updatedAt') }} as _updated_raw
    from src
),

typed as (
    select
        *,
        {{ try_numeric('_price_raw') }} as price,
        {{ try_timestamp('_created_raw') }} as created_at,
        {{ try_timestamp('_updated_raw') }} as updated_at
    from parsed
),

checked as (
    select
        *,
        nullif(concat_ws(';',
            {{ schema_version_reason('_value') }},
            case when product_id is null then {{ absent_reason('_value', 'id') }} end,
            case when _price_raw is null then {{ absent_reason('_value', 'price') }}
                 when price is null then 'invalid_number:price'
                 when price < 0 then 'negative_price' end,
            case when _created_raw is not null and created_at is null then 'invalid_timestamp:meta.createdAt' end,
            case when _updated_raw is not null and updated_at is null then 'invalid_timestamp:meta.updatedAt' end,
            case when _record_key <> product_id then 'key_mismatch' end,
            case when {{ is_far_future('_event_ts') }} then 'future_timestamp:event_ts'
                 when {{ is_far_past('_event_ts') }} then 'past_timestamp:event_ts' end,
            case when {{ is_far_future('created_at') }} then 'future_timestamp:meta.createdAt'
                 when {{ is_far_past('created_at') }} then 'past_timestamp:meta.createdAt' end,
            case when {{ is_far_future('updated_at') }} then 'future_timestamp:meta.updatedAt'
                 when {{ is_far_past('updated_at') }} then 'past_timestamp:meta.updatedAt' end
        ), '') as _intrinsic_reason,
        md5(row(name, description, price, category, created_at, updated_at)::text) as _content_hash
    from typed
),

ranked as (
    select
        _bronze_id,
        row_number() over (
            partition by product_id order by _event_ts desc, _partition desc, _offset desc
        ) as _version_rank,
        min(_event_ts) over (partition by product_id) as _first_seen_ts
    from checked
    where _intrinsic_reason is null
)

select
    c._bronze_id::bigint as _bronze_id,
    c._topic::varchar as _topic,
    c._partition::integer as _partition,
    c._offset::bigint as _offset,
    c._record_key::varchar as _record_key,
    c._event_ts::timestamp as _event_ts,
    c._ingested_at::timestamp as _ingested_at,
    {{ run_ts() }} as _staged_at,
    {{ run_ts() }} as _decided_at,
    (case
        when c._intrinsic_reason is not null then 'rejected'
        when r._version_rank > 1 then 'superseded'
        else 'admitted'
    end)::varchar as _status,
    (case
        when c._intrinsic_reason is not null then c._intrinsic_reason
    end)::text as _reject_reason,
    (case when r._version_rank = 1 then r._first_seen_ts end)::timestamp as _first_seen_ts,
    c._content_hash::text as _content_hash,
    c.product_id::varchar as product_id,
    c.name::varchar as name,
    c.description::text as description,
    c.price::numeric as price,
    c.category::varchar as category,
    c.created_at::timestamp as created_at,
    c.updated_at::timestamp as updated_at
from checked as c
left join ranked as r on r._bronze_id = c._bronze_id
