{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='customer_id',
    indexes=[{'columns': ['_loaded_at']}],
  )
}}

select
    customer_id::varchar as customer_id,
    first_name::varchar as first_name,
    last_name::varchar as last_name,
    email::varchar as email,
    created_at::timestamp as created_at,
    updated_at::timestamp as updated_at,
    _loaded_at::timestamp as _loaded_at
from {{ ref('customers') }}
{%- if is_incremental() %}
where _loaded_at > {{ ts_watermark(this, '_loaded_at') }}
{%- endif %}
