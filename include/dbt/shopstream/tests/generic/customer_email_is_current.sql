{#-
  On fct_orders (`model`): customer_email (denormalised) equals the customer's email in dim_customers
  (`customers`). A customer's email change must rewrite every one of their orders, old ones included; an order
  left with the previous email fails.
  Scope (var test_scope): 'batch' checks the orders fct_orders wrote in its latest run plus every order of the
  customers whose email changed in silver's latest email change (`silver_customers._email_changed_at`; their
  orders found through `silver_orders`' index on customer_id, as fct_orders has none); 'all' every order.
-#}
{% test customer_email_is_current(model, customers, silver_customers, silver_orders) %}
{%- set latest_batch_only = var('test_scope', 'batch') != 'all' %}
with checked as (
    select order_id from {{ model }}
    {%- if latest_batch_only %} where _src_loaded_at >= {{ ts_watermark(model, '_src_loaded_at') }}
    union
    select o.order_id
    from {{ silver_customers }} as c
    join {{ silver_orders }} as o on o.customer_id = c.customer_id
    where c._email_changed_at >= {{ ts_watermark(silver_customers, '_email_changed_at') }}
    {%- endif %}
)
select f.order_id, f.customer_id, f.customer_email, d.email as dim_customers_email
from checked as c
join {{ model }} as f on f.order_id = c.order_id
left join {{ customers }} as d on d.customer_id = f.customer_id
where f.customer_email is distinct from d.email
{% endtest %}
