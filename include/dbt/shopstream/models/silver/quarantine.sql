{#-
  Everything from bronze that is not (yet) in silver, with the reason and the bronze coordinates:
    status 'rejected' - can never become a silver row as received (bad field, unknown type, duplicate...)
    status 'pending'  - valid, but waits for its customer/product to reach silver; re-evaluated by every
                        run and gone from this view once admitted (or superseded by a newer version).
  A view over the staging tables' partial indexes (only rejected/pending rows are read), so it is always
  current and costs nothing to maintain. Invalid order items are listed one by one (source_table
  'order_items'), in addition to their order (reason invalid_items).
-#}
{{ config(materialized='view') }}

{%- set entities = [
    ('customers', 'stg_customers', 'customer_id'),
    ('products', 'stg_products', 'product_id'),
    ('orders', 'stg_orders', 'order_id'),
    ('events', 'stg_events', 'event_id'),
] %}

{%- for source_table, model, key in entities %}
select
    '{{ source_table }}'::varchar as source_table,
    coalesce(s.{{ key }}, s._record_key)::varchar as record_key,
    s._reject_reason::text as reason,
    s._status::varchar as status,
    s._bronze_id::bigint as bronze_id,
    s._topic::varchar as topic,
    s._partition::integer as "partition",
    s._offset::bigint as "offset",
    s._event_ts::timestamp as event_ts,
    s._ingested_at::timestamp as ingested_at,
    s._decided_at::timestamp as decided_at,
    b.record_value::jsonb as record
from {{ ref(model) }} as s
join {{ source('bronze', 'raw_events') }} as b on b.bronze_id = s._bronze_id
where s._status in ('rejected', 'pending')
union all
{%- endfor %}
select
    'order_items'::varchar as source_table,
    coalesce(i.order_item_id, s.order_id || '#' || i._line_no, s._record_key || '#' || i._line_no)::varchar,
    i._item_reason::text,
    'rejected'::varchar,
    s._bronze_id::bigint,
    s._topic::varchar,
    s._partition::integer,
    s._offset::bigint,
    s._event_ts::timestamp,
    s._ingested_at::timestamp,
    s._decided_at::timestamp,
    i._item::jsonb
from {{ ref('stg_orders') }} as s
cross join lateral ( {{ order_items_checked('s._items', 's.order_id') }} ) as i
where s._status = 'rejected' and i._item_reason is not null
