{#-
  On agg_orders_daily (`model`) against fct_orders (`orders`): per day of order_date, orders = the number of
  fct_orders rows that day and revenue = their total_amount summed; a day with orders but no row, or a row for a
  day without orders, fails. The aggregate recomputes only the days an increment touched, so a day it forgot
  (an order moved to another day, the old day kept its count) shows here.
  Which days (var test_scope): macros/per_day_check_days.sql; an order's earlier days are its _order_dates.
-#}
{% test orders_per_day_match(model, orders) %}
with days as (
{{ per_day_check_days(model, 'order_date', orders, '_src_loaded_at', 'order_date', '_order_dates') }}
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
