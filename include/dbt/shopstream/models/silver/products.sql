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

with {{ latest_version_merge('stg_products', 'product_id', entity='products',
                              columns=['product_id', 'name', 'description', 'price', 'category', 'created_at', 'updated_at']) }}

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
