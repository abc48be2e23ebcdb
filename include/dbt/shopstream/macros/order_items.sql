{#-
  The `items` array of one orders message, one row per element, parsed and checked. Meant for
  `cross join lateral ( {{ order_items_checked('o._items', 'o.order_id') }} ) as i`.
  Columns: _line_no, _item (the element), order_item_id, product_id, quantity, unit_price, _item_reason.
  Shared by staging.stg_orders (an order with any invalid item is rejected as a whole: its total would not
  add up), silver.order_items and silver.quarantine (which lists each invalid item with its own reason).
-#}
{% macro order_items_checked(items_expr, order_id_expr) -%}
    select
        _line_no, _item, order_item_id, product_id, quantity, unit_price,
        nullif(concat_ws(';',
            case when jsonb_typeof(_item) <> 'object' then 'invalid_item' end,
            case when order_item_id is null then {{ absent_reason('_item', 'order_item_id') }}
                 {#- "<order_id>-<suffix>" with no "-" in the suffix: the order id is then everything before
                     the last "-", so two orders can never claim the same item id (o-1 + "00-01" and
                     o-1-00 + "01" would both give o-1-00-01 and block silver's primary key). #}
                 when left(order_item_id, length({{ order_id_expr }}) + 1) <> {{ order_id_expr }} || '-'
                      or length(order_item_id) = length({{ order_id_expr }}) + 1
                      or strpos(substr(order_item_id, length({{ order_id_expr }}) + 2), '-') > 0
                     then 'item_id_mismatch'
                 when count(*) over (partition by order_item_id) > 1 then 'duplicate_item_id' end,
            case when product_id is null then {{ absent_reason('_item', 'product_id') }} end,
            case when _quantity_raw is null then {{ absent_reason('_item', 'quantity') }}
                 when quantity is null then 'invalid_number:quantity'
                 when quantity <= 0 then 'quantity_not_positive' end,
            case when _unit_price_raw is null then {{ absent_reason('_item', 'unit_price') }}
                 when unit_price is null then 'invalid_number:unit_price'
                 when unit_price < 0 then 'negative_price' end
        ), '') as _item_reason
    from (
        select
            _line_no, _item, order_item_id, product_id, _quantity_raw, _unit_price_raw,
            {{ try_integer('_quantity_raw') }} as quantity,
            {{ try_numeric('_unit_price_raw') }} as unit_price
        from (
            select
                e.ordinality::integer as _line_no,
                e.value as _item,
                {{ json_key('e.value', 'order_item_id') }} as order_item_id,
                {{ json_key('e.value', 'product_id') }} as product_id,
                {{ json_text('e.value', 'quantity') }} as _quantity_raw,
                {{ json_text('e.value', 'unit_price') }} as _unit_price_raw
            from jsonb_array_elements(
                case when jsonb_typeof({{ items_expr }}) = 'array' then {{ items_expr }} else '[]'::jsonb end
            ) with ordinality as e(value, ordinality)
        ) as raw_items
    ) as typed_items
{%- endmacro %}
