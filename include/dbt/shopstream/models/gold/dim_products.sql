{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='product_id',
    indexes=[{'columns': ['_loaded_at']}],
  )
}}

select
    product_id::varchar as product_id,
    name::varchar as name,
    description::text as description,
    price::numeric as price,
    category::varchar as category,
    created_at::timestamp as created_at,
    updated_at::timestamp as updated_at,
    _loaded_at::timestamp as _loaded_at
from {{ ref('products') }}
{%- if is_incremental() %}
where _loaded_at > {{ ts_watermark(this, '_loaded_at') }}
{%- endif %}
