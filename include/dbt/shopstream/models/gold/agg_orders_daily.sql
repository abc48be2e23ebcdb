{#- Orders and revenue per day of order_date (all statuses; revenue = sum of total_amount).
    Incremental: only the days the increment touched are recomputed from gold.fct_orders - the current
    order_date of every order written since the watermark and every day it was counted on before
    (fct_orders._order_dates) - and replaced (replace_by_key on order_date). A day left without orders
    is emitted with orders = 0 so its old row is deleted, and is not inserted (replace_keep). -#}
{{
  config(
    materialized='incremental',
    incremental_strategy='replace_by_key',
    unique_key='order_date',
    replace_keep='orders > 0',
  )
}}

with days as (
    {%- if is_incremental() %}
    select distinct d as day
    from {{ ref('fct_orders') }} as f
    cross join unnest(f._order_dates) as d
    where f._src_loaded_at > {{ ts_watermark(this, '_src_loaded_at') }}
    {%- else %}
    select distinct order_date::date as day
    from {{ ref('fct_orders') }}
    {%- endif %}
)

select
    d.day::date as order_date,
    count(f.total_amount)::integer as orders,
    coalesce(sum(f.total_amount), 0)::numeric as revenue,
    max(f._src_loaded_at)::timestamp as _src_loaded_at
from days as d
left join lateral (  -- an index range scan on fct_orders(order_date) per day
    select t.total_amount, t._src_loaded_at
    from {{ ref('fct_orders') }} as t
    where t.order_date >= d.day and t.order_date < d.day + 1
    offset 0
) as f on true
group by d.day
