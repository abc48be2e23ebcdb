{#-
  How the versions of one entity key are ordered, newest first (an ORDER BY list, or with `as_row` the
  same keys as a row value for comparisons like `(...) >= (...)`): by the Kafka timestamp; for orders
  then by the status' place in the lifecycle (var order_statuses: placed, paid, shipped, delivered,
  cancelled), because successive versions of an order legitimately share their Kafka timestamp (it is
  order_ts); then by (partition, offset).
  Partition and offset only decide between versions that nothing else tells apart (a tie group,
  `version_tie_keys`): identical re-sends, or true conflicts (same timestamp and status, different content),
  whose losers staging quarantines as conflicting_duplicate (macros/conflicting_duplicates.sql). So a
  repartition never lets an older status win.
  `partition`/`offset` name the columns with the version's Kafka coordinates (staging: _partition/_offset;
  silver: _kafka_partition/_kafka_offset), `prefix` qualifies every column (e.g. 's.').
-#}
{% macro version_order(entity, partition='_partition', offset='_offset', prefix='', as_row=false) -%}
    {%- set keys = version_tie_keys(entity, prefix) -%}
    {%- do keys.extend([prefix ~ partition, prefix ~ offset]) -%}
    {%- if as_row -%}
        ({{ keys | join(', ') }})
    {%- else -%}
        {{ keys | join(' desc, ') }} desc
    {%- endif -%}
{%- endmacro %}

{#- The version order keys before (partition, offset), as a list of SQL expressions: versions equal in all
    of them form a tie group (macros/conflicting_duplicates.sql). -#}
{% macro version_tie_keys(entity, prefix='') -%}
    {%- set keys = [prefix ~ '_event_ts'] -%}
    {%- if entity == 'orders' -%}
        {%- do keys.append(order_status_rank(prefix ~ 'status')) -%}
    {%- endif -%}
    {{- return(keys) -}}
{%- endmacro %}

{#- An order status' place in the lifecycle (the order of var order_statuses); 0 for anything else. -#}
{% macro order_status_rank(status_expr) -%}
    coalesce(array_position(array['{{ var("order_statuses") | join("', '") }}']::text[], {{ status_expr }}::text), 0)
{%- endmacro %}

{#- What tells two versions of an order apart (a conflicting duplicate has the same version order keys and
    another hash). Over columns stg_orders has both in its new rows and in its stored ones. -#}
{% macro order_content_hash() -%}
    md5(row(customer_id, order_date, total_amount, status, _items)::text)
{%- endmacro %}
