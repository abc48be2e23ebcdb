{#-
  On agg_orders_daily (`model`) against fct_orders (`orders`): per day of order_date, orders = the number of
  fct_orders rows that day and revenue = their total_amount summed; a day with orders but no row, or a row for a
  day without orders, fails. The aggregate recomputes only the days an increment touched, so a day it forgot
  (an order moved to another day, the old day kept its count) shows here.
  Scope (var test_scope): 'batch' checks the days of the aggregate's latest run and every day, current or
  earlier (_order_dates), of the orders fct_orders wrote in its latest run; 'all' every day.
-#}
{% test orders_per_day_match(model, orders) %}
{%- set latest_batch_only = var('test_scope', 'batch') != 'all' %}
{%- set orders_batch = "_src_loaded_at >= " ~ ts_watermark(orders, '_src_loaded_at') if latest_batch_only else "true" %}
with days as (
    select order_date as day from {{ model }}
    {%- if latest_batch_only %} where _src_loaded_at >= {{ ts_watermark(model, '_src_loaded_at') }}{% endif %}
    union
    select order_date::date from {{ orders }} where {{ orders_batch }}
    union
    select d from {{ orders }} as o cross join unnest(o._order_dates) as d where {{ orders_batch }}
)
select d.day as order_date, a.orders, a.revenue, f.orders as fct_orders_orders, f.revenue as fct_orders_revenue
from days as d
left join {{ model }} as a on a.order_date = d.day
cross join lateral (  -- an index-only range scan on fct_orders(order_date) per day
    select count(*) as orders, coalesce(sum(t.total_amount), 0) as revenue
    from {{ orders }} as t
    where t.order_date >= d.day and t.order_date < d.day + 1
) as f
where coalesce(a.orders, 0) <> f.orders or coalesce(a.revenue, 0) <> f.revenue
{% endtest %}
