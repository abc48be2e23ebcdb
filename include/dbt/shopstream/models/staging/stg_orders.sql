{#-
  One row per bronze `orders` message: parsed, validated (header and every item), and decided:
    rejected   - cannot become a silver row (_reject_reason); listed in silver.quarantine
    superseded - valid, but older than the admitted version of its order among the candidates
    pending    - valid and newer than the admitted version, but its customer or one of its products is
                 not in silver yet (_reject_reason pending_customer / pending_product). Re-evaluated on
                 every run; listed in silver.quarantine with status 'pending' until admitted or superseded.
    admitted   - the latest ADMISSIBLE version (parents in silver): silver.orders / silver.order_items take
                 it (if newer than what silver holds). A newer pending version does not hide it, so the
                 batches a history was cut into never decide what silver holds.
  Candidates of a run = the new bronze rows + every row still pending. A candidate that is older than the
  version silver already holds is admitted without the foreign-key check: it cannot overwrite the newer
  version, it only counts for created_at (first time the order was seen).
  Versions are ordered by macros/version_order.sql: Kafka timestamp (= order_ts, so successive versions -
  status changes - legitimately share it), then the status' place in the lifecycle, then (partition,
  offset). Two versions with the same timestamp and status but different content are a conflicting
  duplicate: the one with the highest (partition, offset) wins, the other is rejected unless the winner is
  pending - decided by the post-hook relabel_conflicting_duplicates (macros/conflicting_duplicates.sql) for
  every run's tie groups, stored rows included. This model only keeps a candidate that a stored tie winner
  beats (other content) from being admitted.
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='_bronze_id',
    indexes=[{'columns': ['_bronze_id'], 'unique': true}],
    post_hook=["{{ staging_indexes(this, key='order_id') }}",
               "{{ relabel_conflicting_duplicates(this, 'order_id', 'orders', content_hash=order_content_hash()) }}",
               "{{ reject_rate_gate(this) }}"],
  )
}}
{%- set silver = existing_relation('silver', 'orders') %}

with src as (
    {{ bronze_increment('orders') }}
),

parsed as (
    select
        bronze_id as _bronze_id,
        topic as _topic,
        "partition" as _partition,
        "offset" as _offset,
        record_key as _record_key,
        event_ts as _event_ts,
        ingested_at as _ingested_at,
        record_value as _value,
        {{ json_key('record_value', 'order_id') }} as order_id,
        {{ json_key('record_value', 'customer_id') }} as customer_id,
        {{ json_text('record_value', 'order_ts') }} as _order_ts_raw,
        {{ json_text('record_value', 'total_amount') }} as _total_raw,
        {{ json_text('record_value', 'status') }} as status,
        record_value -> 'items' as _items
    from src
),

typed as (
    select
        p.*,
        {{ try_timestamp('p._order_ts_raw') }} as order_date,
        {{ try_numeric('p._total_raw') }} as total_amount,
        s._item_count,
        s._invalid_items,
        s._items_total,
        s._product_ids
    from parsed as p
    cross join lateral (
        select
            count(*) as _item_count,
            count(*) filter (where i._item_reason is not null) as _invalid_items,
            sum(round(i.quantity * i.unit_price, 2)) as _items_total,
            coalesce(array_agg(distinct i.product_id) filter (where i.product_id is not null), '{}') as _product_ids
        from ( {{ order_items_checked('p._items', 'p.order_id') }} ) as i
    ) as s
),

checked as (
    select
        *,
        nullif(concat_ws(';',
            {{ schema_version_reason('_value') }},
            case when order_id is null then {{ absent_reason('_value', 'order_id') }} end,
            case when customer_id is null then {{ absent_reason('_value', 'customer_id') }} end,
            case when _order_ts_raw is null then {{ absent_reason('_value', 'order_ts') }}
                 when order_date is null then 'invalid_timestamp:order_ts'
                 when {{ is_far_future('order_date') }} then 'future_timestamp:order_ts'
                 when {{ is_far_past('order_date') }} then 'past_timestamp:order_ts' end,
            case when _total_raw is null then {{ absent_reason('_value', 'total_amount') }}
                 when total_amount is null then 'invalid_number:total_amount'
                 when total_amount < 0 then 'negative_amount' end,
            case when status is null then {{ absent_reason('_value', 'status') }}
                 when status not in ('{{ var("order_statuses") | join("', '") }}') then 'invalid_status' end,
            case when jsonb_typeof(_items) in ('object', 'string', 'number', 'boolean') then 'invalid_type:items'
                 when jsonb_typeof(_items) is distinct from 'array' or _item_count = 0 then 'missing_field:items'
                 when _invalid_items > 0 then 'invalid_items'
                 when total_amount is not null and _items_total <> total_amount then 'total_mismatch' end,
            case when _record_key <> order_id then 'key_mismatch' end,
            case when {{ is_far_future('_event_ts') }} then 'future_timestamp:event_ts'
                 when {{ is_far_past('_event_ts') }} then 'past_timestamp:event_ts' end
        ), '') as _intrinsic_reason
    from typed
),

pool as (
    select _bronze_id, _partition, _offset, _event_ts, order_id, customer_id, status, _product_ids,
           {{ order_content_hash() }} as _content_hash,
           _event_ts as _first_seen_ts, true as _is_new,
           null::varchar as _old_status, null::text as _old_reason, null::timestamp as _old_first_seen_ts
    from checked
    where _intrinsic_reason is null
    {%- if is_incremental() %}
    union all
    select _bronze_id, _partition, _offset, _event_ts, order_id, customer_id, status, _product_ids,
           {{ order_content_hash() }},
           _first_seen_ts, false, _status, _reject_reason, _first_seen_ts
    from {{ this }}
    where _status = 'pending'
    {%- endif %}
),

tied as (
    {{ stored_tie_winner('pool', this, 'order_id', 'orders', content_hash=order_content_hash()) }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by order_id order by {{ version_order('orders') }}
        ) as _version_rank,
        min(_first_seen_ts) over (partition by order_id) as _pool_first_seen_ts
    from tied
),

{#- The version each order has (or is about to have) in silver: silver.orders plus admitted versions it
    has not consumed yet. Empty on the first run and on a full refresh. #}
state as materialized (
    {%- if is_incremental() %}
    {%- if silver is not none %}
    select s.order_id, s._event_ts, s.status, s._kafka_partition as _partition, s._kafka_offset as _offset
    from ranked as r
    cross join lateral (  -- one primary-key probe per candidate, whatever the size of silver
        select t.order_id, t._event_ts, t.status, t._kafka_partition, t._kafka_offset
        from {{ silver }} as t where t.order_id = r.order_id limit 1
    ) as s
    where r._version_rank = 1
    union all
    {%- endif %}
    select order_id, _event_ts, status, _partition, _offset
    from {{ this }}
    where _status = 'admitted'
      {%- if silver is not none %}
      and _decided_at > {{ ts_watermark(silver, '_decided_at') }}
      {%- endif %}
      and order_id in (select order_id from ranked where _version_rank = 1)
    {%- else %}
    select null::text as order_id, null::timestamp as _event_ts, null::text as status,
           null::integer as _partition, null::bigint as _offset
    where false
    {%- endif %}
),

{#- Every version of the pool, with what decides it: newer than silver's version (current), and its
    customer and products in silver (parents known). #}
evaluated as (
    select
        r.*,
        not exists (
            select 1 from state as s
            where s.order_id = r.order_id
              and {{ version_order('orders', prefix='s.', as_row=true) }}
                  >= {{ version_order('orders', prefix='r.', as_row=true) }}
        ) as _is_current,
        exists (
            select 1 from {{ ref('customers') }} as c where c.customer_id = r.customer_id
        ) as _customer_known,
        not exists (
            select 1 from unnest(r._product_ids) as p(product_id)
            where not exists (select 1 from {{ ref('products') }} as pr where pr.product_id = p.product_id)
        ) as _products_known
    from ranked as r
),

{#- The latest ADMISSIBLE version is admitted: a newer version that waits for a parent (pending) does not
    hide it, so incremental runs and a full refresh agree whatever the batches were. A version not newer
    than silver's is admissible without the parent check (it cannot overwrite; it counts for created_at).
    Versions newer than the admitted one stay pending (each may become admissible when its parent comes);
    older ones are superseded; a version a stored tie winner beats is a conflicting duplicate (the losers of
    a winner among the candidates are judged as versions here and rejected by the post-hook). #}
marked as (
    select
        *,
        min(_version_rank) filter (where not _stored_winner_differs
                                     and (not _is_current or (_customer_known and _products_known)))
            over (partition by order_id) as _admitted_rank
    from evaluated
),

decisions as (
    select
        _bronze_id, _is_new, _old_status, _old_reason, _old_first_seen_ts,
        (case when _stored_winner_differs then 'rejected'
              when _version_rank < coalesce(_admitted_rank, _version_rank + 1) then 'pending'
              when _version_rank = _admitted_rank then 'admitted'
              else 'superseded' end)::varchar as _status,
        (case when _stored_winner_differs then 'conflicting_duplicate'
              when _version_rank < coalesce(_admitted_rank, _version_rank + 1) then
            concat_ws(';',
                case when not _customer_known then 'pending_customer' || {{ parent_rejected_suffix(
                    "exists (select 1 from " ~ ref('stg_customers') ~ " as p where p.customer_id = marked.customer_id and p._status = 'rejected')") }} end,
                case when not _products_known then 'pending_product' || {{ parent_rejected_suffix(
                    "exists (select 1 from unnest(marked._product_ids) as m(product_id)
                             where not exists (select 1 from " ~ ref('products') ~ " as pr where pr.product_id = m.product_id)
                               and exists (select 1 from " ~ ref('stg_products') ~ " as p
                                           where p.product_id = m.product_id and p._status = 'rejected'))") }} end)
        end)::text as _reject_reason,
        (case when _version_rank <= coalesce(_admitted_rank, _version_rank)
                   and not _stored_winner_differs
              then _pool_first_seen_ts end)::timestamp as _first_seen_ts
    from marked
)

{#- New rows: all of them, with their decision. #}
select
    c._bronze_id::bigint as _bronze_id,
    c._topic::varchar as _topic,
    c._partition::integer as _partition,
    c._offset::bigint as _offset,
    c._record_key::varchar as _record_key,
    c._event_ts::timestamp as _event_ts,
    c._ingested_at::timestamp as _ingested_at,
    {{ run_ts() }} as _staged_at,
    {{ run_ts() }} as _decided_at,
    coalesce(d._status, 'rejected')::varchar as _status,
    coalesce(c._intrinsic_reason, d._reject_reason)::text as _reject_reason,
    d._first_seen_ts::timestamp as _first_seen_ts,
    c.order_id::varchar as order_id,
    c.customer_id::varchar as customer_id,
    c.order_date::timestamp as order_date,
    c.total_amount::numeric as total_amount,
    c.status::varchar as status,
    c._items::jsonb as _items,
    c._product_ids::varchar[] as _product_ids
from checked as c
left join decisions as d on d._bronze_id = c._bronze_id and d._is_new
{%- if is_incremental() %}
union all
{#- Previously pending rows whose decision changed (admitted, superseded, or a different reason). #}
select
    t._bronze_id, t._topic, t._partition, t._offset, t._record_key, t._event_ts, t._ingested_at,
    t._staged_at,
    {{ run_ts() }} as _decided_at,
    d._status,
    d._reject_reason,
    d._first_seen_ts,
    t.order_id, t.customer_id, t.order_date, t.total_amount, t.status, t._items, t._product_ids
from decisions as d
cross join lateral (select * from {{ this }} as x where x._bronze_id = d._bronze_id limit 1) as t
where not d._is_new
  and (d._status is distinct from d._old_status
       or d._reject_reason is distinct from d._old_reason
       or d._first_seen_ts is distinct from d._old_first_seen_ts)
{%- endif %}
