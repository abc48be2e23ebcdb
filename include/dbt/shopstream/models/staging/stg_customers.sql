{#-
  One row per bronze `customers` message: parsed, validated, and given a decision (_status):
    rejected   - cannot become a silver row (_reject_reason says why); listed in silver.quarantine
    superseded - valid, but an older version of a customer that has a newer version in the same batch
    admitted   - the batch's latest valid version of the customer; silver.customers takes it if it is
                 newer than what silver holds (otherwise it only lowers created_at = first time seen)
  Email uniqueness (silver.customers.email is UNIQUE) is decided here, on the state after the batch (see
  `claims` below): swaps and chains within a batch apply; a version whose email another customer keeps
  (or claims first) is rejected as duplicate_email.
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['_bronze_id'], 'unique': true}],
    post_hook=["{{ reject_rate_gate(this) }}", "{{ staging_indexes(this, rejected_key='customer_id') }}"],
  )
}}
{%- set silver = existing_relation('silver', 'customers') %}

with src as (
    {{ bronze_increment('customers') }}
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
        {{ json_key('record_value', 'id') }} as customer_id,
        {{ json_text('record_value', 'firstName') }} as first_name,
        {{ json_text('record_value', 'lastName') }} as last_name,
        lower(btrim({{ json_text('record_value', 'email') }})) as email
    from src
),

checked as (
    select
        *,
        nullif(concat_ws(';',
            {{ schema_version_reason('_value') }},
            case when customer_id is null then {{ absent_reason('_value', 'id') }} end,
            case when coalesce(email, '') = '' then {{ absent_reason('_value', 'email') }}
                 when not {{ is_valid_email('email') }} then 'invalid_email' end,
            case when _record_key <> customer_id then 'key_mismatch' end,
            case when {{ is_far_future('_event_ts') }} then 'future_timestamp:event_ts'
                 when {{ is_far_past('_event_ts') }} then 'past_timestamp:event_ts' end
        ), '') as _intrinsic_reason,
        md5(row(first_name, last_name, email)::text) as _content_hash
    from parsed
),

ranked as (
    select
        _bronze_id, _partition, _offset, _event_ts, customer_id, email, _content_hash,
        row_number() over (
            partition by customer_id order by _event_ts desc, _partition desc, _offset desc
        ) as _version_rank,
        first_value(_content_hash) over (
            partition by customer_id, _event_ts order by _partition desc, _offset desc
        ) as _tie_winner_hash,
        min(_event_ts) over (partition by customer_id) as _first_seen_ts
    from checked
    where _intrinsic_reason is null
),

{#- Who holds which version/email before this batch: silver, plus admitted versions silver has not
    consumed yet (a failed silver run). Empty on the first run and on a full refresh. #}
state as materialized (
    {%- if is_incremental() %}
    {%- if silver is not none %}
    select customer_id, email, _event_ts, _kafka_partition as _partition, _kafka_offset as _offset
    from {{ silver }}
    where customer_id in (select customer_id from ranked where _version_rank = 1)
       or email in (select email from ranked where _version_rank = 1)
    union all
    {%- endif %}
    select customer_id, email, _event_ts, _partition, _offset
    from {{ this }}
    where _status = 'admitted'
      {%- if silver is not none %}
      and _decided_at > {{ ts_watermark(silver, '_decided_at') }}
      {%- endif %}
    {%- else %}
    select null::text as customer_id, null::text as email, null::timestamp as _event_ts,
           null::integer as _partition, null::bigint as _offset
    where false
    {%- endif %}
),

latest as (
    select
        r.*,
        not exists (
            select 1 from state as s
            where s.customer_id = r.customer_id
              and (s._event_ts, s._partition, s._offset) >= (r._event_ts, r._partition, r._offset)
        ) as _is_current
    from ranked as r
    where r._version_rank = 1
),

{#- Email uniqueness is decided on the state AFTER the batch: a customer's email after the batch is the one
    of its new (current) version if that version is admitted, else the one it holds. So a swap (A a->b,
    B b->a) or a chain (B b->c, A a->b) in one batch applies, as it does in a full refresh. A new version is
    rejected as duplicate_email when its email
      - stays with a customer that has no new version in the batch (held in silver or not yet consumed),
      - is claimed by another new version that comes first: the customer already holding it, then the
        earliest event_ts, then the lowest customer_id (independent of partitions and offsets),
      - or is the old email of a customer whose own new version is rejected (it keeps that email): this
        last rule is applied until nothing changes (recursive), so the admitted emails are always unique. #}
claims as (
    select
        l._bronze_id, l.customer_id, l.email, l._event_ts,
        exists (select 1 from state as s where s.customer_id = l.customer_id and s.email = l.email) as _holds
    from latest as l
    where l._is_current
),

email_conflicts as (
    with recursive rejected (customer_id) as (
        select c.customer_id
        from claims as c
        where exists (
                select 1 from state as s
                where s.email = c.email and s.customer_id <> c.customer_id
                  and not exists (select 1 from claims as o where o.customer_id = s.customer_id))
           or exists (
                select 1 from claims as o
                where o.email = c.email and o.customer_id <> c.customer_id
                  and (not o._holds, o._event_ts, o.customer_id) < (not c._holds, c._event_ts, c.customer_id))
        union
        select c.customer_id
        from rejected as r
        join state as s on s.customer_id = r.customer_id
        join claims as c on c.email = s.email and c.customer_id <> r.customer_id
    )
    select c._bronze_id
    from claims as c
    join rejected as r on r.customer_id = c.customer_id
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
    (case
        when c._intrinsic_reason is not null then 'rejected'
        when r._content_hash <> r._tie_winner_hash then 'rejected'
        when r._version_rank > 1 then 'superseded'
        when e._bronze_id is not null then 'rejected'
        else 'admitted'
    end)::varchar as _status,
    (case
        when c._intrinsic_reason is not null then c._intrinsic_reason
        when r._content_hash <> r._tie_winner_hash then 'conflicting_duplicate'
        when r._version_rank > 1 then null
        when e._bronze_id is not null then 'duplicate_email'
    end)::text as _reject_reason,
    (case when r._version_rank = 1 then r._first_seen_ts end)::timestamp as _first_seen_ts,
    c._content_hash::text as _content_hash,
    c.customer_id::varchar as customer_id,
    c.first_name::varchar as first_name,
    c.last_name::varchar as last_name,
    c.email::varchar as email
from checked as c
left join ranked as r on r._bronze_id = c._bronze_id
left join email_conflicts as e on e._bronze_id = c._bronze_id
