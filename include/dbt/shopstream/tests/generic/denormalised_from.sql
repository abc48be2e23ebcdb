{#-
  A denormalised column (`column_name` of `model`) equals the column it copies (`field` of `to`, the row with
  the same `key`), e.g. fct_order_items.order_date = fct_orders.order_date of the item's order. A copy that
  missed a change of its source (an increment that rewrote the source row but not the copies) fails.
  Scope (var test_scope): 'batch' checks the rows of `model` whose key either table wrote in its latest run
  (`batch_column`, the same name in both; `model` needs an index on `key`), 'all' every row.
-#}
{% test denormalised_from(model, column_name, to, field, key, batch_column) %}
{%- set latest_batch_only = var('test_scope', 'batch') != 'all' %}
with checked as (
    select {{ key }} from {{ model }}
    {%- if latest_batch_only %} where {{ batch_column }} >= {{ ts_watermark(model, batch_column) }}{% endif %}
    union
    select {{ key }} from {{ to }}
    {%- if latest_batch_only %} where {{ batch_column }} >= {{ ts_watermark(to, batch_column) }}{% endif %}
)
select c.{{ key }}, m.{{ column_name }}, s.{{ field }} as source_{{ field }}
from checked as c
join {{ model }} as m on m.{{ key }} = c.{{ key }}
left join {{ to }} as s on s.{{ key }} = c.{{ key }}
where m.{{ column_name }} is distinct from s.{{ field }}
{% endtest %}
