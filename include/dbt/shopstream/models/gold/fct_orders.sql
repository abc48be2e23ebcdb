{#- One row per order with the customer's current email denormalised. Incremental upsert of the orders
    silver.orders wrote since the watermark, plus every order of a customer whose email changed since
    (silver.customers._email_changed_at), so customer_email never goes stale. _order_dates keeps every
    day the order has been counted on, for gold.agg_orders_daily. -#}
{#- post_hook: a covering index: gold.agg_orders_daily recomputes a day with an index-only scan. #}
{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='order_id',
    indexes=[{'columns': ['_src_loaded_at']}],
    post_hook="{{ ensure_index(this, 'day', '(order_date) include (total_amount, _src_loaded_at)') }}",
  )
}}

with changed as (
    {%- if is_incremental() %}
    select order_id
    from {{ ref('orders') }}
    where _loaded_at > {{ ts_watermark(this, '_src_loaded_at') }}
    union
    select o.order_id
    from {{ ref('customers') }} as c
    cross join lateral (  -- index probes on orders(customer_id)
        select t.order_id from {{ ref('orders') }} as t where t.customer_id = c.customer_id offset 0
    ) as o
    where c._email_changed_at > {{ ts_watermark(this, '_src_loaded_at') }}
    {%- else %}
    select order_id from {{ ref('orders') }}
    {%- endif %}
)

select
    o.order_id::varchar as order_id,
    o.customer_id::varchar as customer_id,
    o.order_date::timestamp as order_date,
    o.total_amount::numeric as total_amount,
    o.status::varchar as status,
    c.email::varchar as customer_email,
    greatest(o._loaded_at, c._email_changed_at)::timestamp as _src_loaded_at,
    (array(
        select distinct d
        from unnest(
            {%- if is_incremental() %}
            coalesce((select e._order_dates from {{ this }} as e where e.order_id = o.order_id), '{}'::date[])
            {%- else %}
            '{}'::date[]
            {%- endif %}
            || o.order_date::date) as d
        order by d
    ))::date[] as _order_dates
from changed as ch
{%- if is_incremental() %}
cross join lateral (select * from {{ ref('orders') }} as t where t.order_id = ch.order_id limit 1) as o
{%- else %}
join {{ ref('orders') }} as o on o.order_id = ch.order_id
{%- endif %}
join {{ ref('customers') }} as c on c.customer_id = o.customer_id
