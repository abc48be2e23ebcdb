{#-
  On fct_order_items (`model`) against fct_orders (`orders`): every order's total_amount equals the sum of its
  items' line totals, each rounded to the cent as the contract computes the total (docs/contracts.md:
  total_amount = sum of round(quantity * unit_price, 2)). An order without items fails too. Silver admits an
  order only when its message adds up (else total_mismatch in the quarantine), so a failure means gold lost,
  duplicated or mis-copied an order's items or its total (e.g. an increment that rewrote the order but not its
  items, or the other way round).
  Scope (var test_scope): 'batch' checks the orders either table wrote in its latest run, 'all' every order.
-#}
{% test line_totals_add_up_to_order_total(model, orders) %}
{%- set latest_batch_only = var('test_scope', 'batch') != 'all' %}
with checked as (
    select order_id from {{ model }}
    {%- if latest_batch_only %} where _src_loaded_at >= {{ ts_watermark(model, '_src_loaded_at') }}{% endif %}
    union
    select order_id from {{ orders }}
    {%- if latest_batch_only %} where _src_loaded_at >= {{ ts_watermark(orders, '_src_loaded_at') }}{% endif %}
)
select c.order_id, o.total_amount, i.line_totals, i.items
from checked as c
left join {{ orders }} as o on o.order_id = c.order_id
cross join lateral (  -- index probes on the items' order_id
    select sum(round(t.line_total, 2)) as line_totals, count(*) as items
    from {{ model }} as t
    where t.order_id = c.order_id
) as i
where o.total_amount is distinct from i.line_totals
{% endtest %}
