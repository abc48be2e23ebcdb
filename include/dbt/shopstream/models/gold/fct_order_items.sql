{#- One row per order item with line_total = quantity * unit_price and the order's date and customer
    denormalised. Incremental: the items of every order silver.orders wrote since the watermark are
    replaced (replace_by_key on order_id). -#}
{{
  config(
    materialized='incremental',
    incremental_strategy='replace_by_key',
    unique_key='order_id',
    indexes=[{'columns': ['order_id']}, {'columns': ['_src_loaded_at']}],
  )
}}

with changed_orders as (
    select order_id, order_date, customer_id, _loaded_at
    from {{ ref('orders') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ ts_watermark(this, '_src_loaded_at') }}
    {%- endif %}
)

select
    i.order_item_id::varchar as order_item_id,
    i.order_id::varchar as order_id,
    i.product_id::varchar as product_id,
    i.quantity::integer as quantity,
    i.unit_price::numeric as unit_price,
    (i.quantity * i.unit_price)::numeric as line_total,
    o.order_date::timestamp as order_date,
    o.customer_id::varchar as customer_id,
    o._loaded_at::timestamp as _src_loaded_at
from changed_orders as o
{%- if is_incremental() %}
cross join lateral (  -- index probes on order_items(order_id); "offset 0" keeps it a nested loop
    select * from {{ ref('order_items') }} as t where t.order_id = o.order_id offset 0
) as i
{%- else %}
join {{ ref('order_items') }} as i on i.order_id = o.order_id
{%- endif %}
