{#- Latest admitted version of each product (see _silver.yml); created_at/updated_at come from the
    product's meta.createdAt/meta.updatedAt. Incremental upsert, an older late version never wins. -#}
{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='product_id',
    indexes=[{'columns': ['_decided_at']}, {'columns': ['_loaded_at']}],
  )
}}

with candidates as (
    select *
    from {{ ref('stg_products') }}
    where _status = 'admitted'
    {%- if is_incremental() %}
      and _decided_at > {{ ts_watermark(this, '_decided_at') }}
    {%- endif %}
),

keys as (
    select product_id, max(_decided_at) as decided_at
    from candidates
    group by product_id
),

existing as (
    {%- if is_incremental() %}
    select t.*
    from keys as k
    cross join lateral (  -- one primary-key probe per key, whatever the size of the table
        select * from {{ this }} as e where e.product_id = k.product_id limit 1
    ) as t
    {%- else %}
    select null::varchar as product_id, null::varchar as name, null::text as description,
           null::numeric as price, null::varchar as category, null::timestamp as created_at,
           null::timestamp as updated_at, null::bigint as _bronze_id, null::timestamp as _event_ts,
           null::integer as _kafka_partition, null::bigint as _kafka_offset, null::timestamp as _loaded_at
    where false
    {%- endif %}
),

versions as (
    select product_id, name, description, price, category, created_at, updated_at, _bronze_id, _event_ts,
           _partition as _kafka_partition, _offset as _kafka_offset, 1 as _source_rank
    from candidates
    union all
    select product_id, name, description, price, category, created_at, updated_at, _bronze_id, _event_ts,
           _kafka_partition, _kafka_offset, 0 as _source_rank
    from existing
),

winner as (
    select distinct on (product_id) *
    from versions
    order by product_id, _event_ts desc, _kafka_partition desc, _kafka_offset desc, _source_rank asc
)

select
    w.product_id::varchar as product_id,
    w.name::varchar as name,
    w.description::text as description,
    w.price::numeric as price,
    w.category::varchar as category,
    w.created_at::timestamp as created_at,
    w.updated_at::timestamp as updated_at,
    w._bronze_id::bigint as _bronze_id,
    w._event_ts::timestamp as _event_ts,
    w._kafka_partition::integer as _kafka_partition,
    w._kafka_offset::bigint as _kafka_offset,
    k.decided_at::timestamp as _decided_at,
    (case when e.product_id is null or w._source_rank = 1 then {{ run_ts() }}
          else e._loaded_at end)::timestamp as _loaded_at
from winner as w
join keys as k on k.product_id = w.product_id
left join existing as e on e.product_id = w.product_id
