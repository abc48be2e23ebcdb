{#- The items of the order version silver.orders holds. Incremental: for every order written by
    silver.orders since this model's watermark (max _loaded_at, copied from the order), all the order's
    item rows are replaced (replace_by_key on order_id), so an item dropped by a newer order version
    disappears too. -#}
{{
  config(
    materialized='incremental',
    incremental_strategy='replace_by_key',
    unique_key='order_id',
    indexes=[{'columns': ['order_id']}, {'columns': ['_loaded_at']}],
  )
}}

with changed_orders as (
    select order_id, created_at, _bronze_id, _loaded_at
    from {{ ref('orders') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ ts_watermark(this, '_loaded_at') }}
    {%- endif %}
),

order_versions as (
    {%- if is_incremental() %}
    select o.order_id, o.created_at, o._bronze_id, o._loaded_at, s._items
    from changed_orders as o
    cross join lateral (  -- one probe of staging's unique _bronze_id index per order
        select t._items from {{ ref('stg_orders') }} as t where t._bronze_id = o._bronze_id limit 1
    ) as s
    {%- else %}
    select o.order_id, o.created_at, o._bronze_id, o._loaded_at, s._items
    from changed_orders as o
    join {{ ref('stg_orders') }} as s on s._bronze_id = o._bronze_id
    {%- endif %}
)

select
    i.order_item_id::varchar as order_item_id,
    o.order_id::varchar as order_id,
    i.product_id::varchar as product_id,
    i.quantity::integer as quantity,
    i.unit_price::numeric as unit_price,
    o.created_at::timestamp as created_at,
    o._bronze_id::bigint as _bronze_id,
    i._line_no::integer as _line_no,
    o._loaded_at::timestamp as _loaded_at
from order_versions as o
cross join lateral ( {{ order_items_checked('o._items', 'o.order_id') }} ) as i
