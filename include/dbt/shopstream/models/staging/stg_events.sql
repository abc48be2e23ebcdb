{#-
  One row per bronze `events` message: parsed, validated, decided (rejected / superseded / pending /
  admitted, as in stg_orders: the latest version whose customer is in silver is admitted, newer versions
  waiting for their customer are pending, reason pending_customer). Two versions of one event_id with the
  same timestamp but different content are a conflicting duplicate: the one with the highest (partition,
  offset) wins, the other is rejected unless the winner is pending (post-hook relabel_conflicting_duplicates,
  macros/conflicting_duplicates.sql, as in stg_orders).
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='_bronze_id',
    indexes=[{'columns': ['_bronze_id'], 'unique': true}],
    post_hook=["{{ staging_indexes(this, key='event_id') }}",
               "{{ relabel_conflicting_duplicates(this, 'event_id', 'events') }}",
               "{{ reject_rate_gate(this) }}"],
  )
}}
{%- set silver = existing_relation('silver', 'events') %}

with src as (
    {{ bronze_increment('events') }}
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
        {{ json_key('record_value', 'event_id') }} as event_id,
        {{ json_key('record_value', 'customer_id') }} as customer_id,
        {{ json_text('record_value', 'event_type') }} as event_type,
        {{ json_text('record_value', 'event_ts') }} as _created_raw,
        record_value - 'event_id' - 'event_type' - 'customer_id' - 'event_ts' as event_data
    from src
),

typed as (
    select *, {{ try_timestamp('_created_raw') }} as created_at
    from parsed
),

checked as (
    select
        *,
        nullif(concat_ws(';',
            {{ schema_version_reason('_value') }},
            case when event_id is null then {{ absent_reason('_value', 'event_id') }} end,
            case when customer_id is null then {{ absent_reason('_value', 'customer_id') }} end,
            case when event_type is null then {{ absent_reason('_value', 'event_type') }}
                 when event_type not in ('{{ var("event_types") | join("', '") }}') then 'unknown_event_type' end,
            case when _created_raw is null then {{ absent_reason('_value', 'event_ts') }}
                 when created_at is null then 'invalid_timestamp:event_ts'
                 when {{ is_far_future('created_at') }} then 'future_timestamp:event_ts'
                 when {{ is_far_past('created_at') }} then 'past_timestamp:event_ts' end,
            case when _record_key <> event_id then 'key_mismatch' end,
            case when {{ is_far_future('_event_ts') }} and not coalesce({{ is_far_future('created_at') }}, false)
                 then 'future_timestamp:kafka_ts'
                 when {{ is_far_past('_event_ts') }} and not coalesce({{ is_far_past('created_at') }}, false)
                 then 'past_timestamp:kafka_ts' end
        ), '') as _intrinsic_reason,
        md5(row(customer_id, event_type, created_at, event_data)::text) as _content_hash
    from typed
),

pool as (
    select _bronze_id, _partition, _offset, _event_ts, event_id, customer_id, _content_hash,
           _event_ts as _first_seen_ts, true as _is_new,
           null::varchar as _old_status, null::text as _old_reason, null::timestamp as _old_first_seen_ts
    from checked
    where _intrinsic_reason is null
    {%- if is_incremental() %}
    union all
    select _bronze_id, _partition, _offset, _event_ts, event_id, customer_id, _content_hash,
           _first_seen_ts, false, _status, _reject_reason, _first_seen_ts
    from {{ this }}
    where _status = 'pending'
    {%- endif %}
),

tied as (
    {{ stored_tie_winner('pool', this, 'event_id', 'events') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by event_id order by {{ version_order('events') }}
        ) as _version_rank,
        min(_first_seen_ts) over (partition by event_id) as _pool_first_seen_ts
    from tied
),

state as materialized (
    {%- if is_incremental() %}
    {%- if silver is not none %}
    select s.event_id, s._event_ts, s._kafka_partition as _partition, s._kafka_offset as _offset
    from ranked as r
    cross join lateral (  -- one primary-key probe per candidate, whatever the size of silver
        select t.event_id, t._event_ts, t._kafka_partition, t._kafka_offset
        from {{ silver }} as t where t.event_id = r.event_id limit 1
    ) as s
    where r._version_rank = 1
    union all
    {%- endif %}
    select event_id, _event_ts, _partition, _offset
    from {{ this }}
    where _status = 'admitted'
      {%- if silver is not none %}
      and _decided_at > {{ ts_watermark(silver, '_decided_at') }}
      {%- endif %}
      and event_id in (select event_id from ranked where _version_rank = 1)
    {%- else %}
    select null::text as event_id, null::timestamp as _event_ts, null::integer as _partition,
           null::bigint as _offset
    where false
    {%- endif %}
),

{#- Every version of the pool: newer than silver's version (current), its customer in silver (known). #}
evaluated as (
    select
        r.*,
        not exists (
            select 1 from state as s
            where s.event_id = r.event_id
              and (s._event_ts, s._partition, s._offset) >= (r._event_ts, r._partition, r._offset)
        ) as _is_current,
        exists (
            select 1 from {{ ref('customers') }} as c where c.customer_id = r.customer_id
        ) as _customer_known
    from ranked as r
),

{#- The latest ADMISSIBLE version is admitted (as in stg_orders): a newer version waiting for its customer
    stays pending without hiding it; older versions are superseded; a version a stored tie winner beats is
    a conflicting duplicate. #}
marked as (
    select
        *,
        min(_version_rank) filter (where not _stored_winner_differs and (not _is_current or _customer_known))
            over (partition by event_id) as _admitted_rank
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
            'pending_customer' || {{ parent_rejected_suffix(
            "exists (select 1 from " ~ ref('stg_customers') ~ " as p where p.customer_id = marked.customer_id and p._status = 'rejected')") }}
         end)::text as _reject_reason,
        (case when _version_rank <= coalesce(_admitted_rank, _version_rank)
                   and not _stored_winner_differs
              then _pool_first_seen_ts end)::timestamp as _first_seen_ts
    from marked
)

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
    c._content_hash::text as _content_hash,
    c.event_id::varchar as event_id,
    c.customer_id::varchar as customer_id,
    c.event_type::varchar as event_type,
    c.event_data::jsonb as event_data,
    c.created_at::timestamp as created_at
from checked as c
left join decisions as d on d._bronze_id = c._bronze_id and d._is_new
{%- if is_incremental() %}
union all
select
    t._bronze_id, t._topic, t._partition, t._offset, t._record_key, t._event_ts, t._ingested_at,
    t._staged_at,
    {{ run_ts() }} as _decided_at,
    d._status,
    d._reject_reason,
    d._first_seen_ts,
    t._content_hash, t.event_id, t.customer_id, t.event_type, t.event_data, t.created_at
from decisions as d
cross join lateral (select * from {{ this }} as x where x._bronze_id = d._bronze_id limit 1) as t
where not d._is_new
  and (d._status is distinct from d._old_status
       or d._reject_reason is distinct from d._old_reason
       or d._first_seen_ts is distinct from d._old_first_seen_ts)
{%- endif %}
