{#-
  One row per bronze `customers` message: parsed, validated, and given a decision (_status):
    rejected   - cannot become a silver row (_reject_reason says why); listed in silver.quarantine
    superseded - valid, but older than the version the customer holds (or gets in this run)
    pending    - valid and newer than what the customer holds, but its email is held (or claimed first) by
                 another customer: _reject_reason duplicate_email; listed in silver.quarantine and decided
                 again in every run that moves a customer whose email it meets
    admitted   - the version silver.customers takes: the customer's newest version it can have; or, when
                 the run brings only versions older than the one held, the newest of them (silver keeps
                 its version and only lowers created_at = first time seen)
  Email uniqueness (silver.customers.email is UNIQUE) is decided message by message in bronze order, so no
  batching changes the outcome (macros/customer_emails.sql has the rule). Customers whose emails meet no
  other customer's in the run - nearly all - are decided set-based (latest version wins); the others go
  through the fold `customer_email_replay`.
  Ties (same event_ts, other content): the highest (partition, offset) wins, the others are rejected as
  conflicting_duplicate unless the winner is pending - decided for every tie group of the run's customers by
  the post-hook relabel_conflicting_duplicates (macros/conflicting_duplicates.sql), whatever the batches.
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='upsert',
    unique_key='_bronze_id',
    indexes=[{'columns': ['_bronze_id'], 'unique': true}],
    post_hook=["{{ staging_indexes(this, key='customer_id', rejected_key='customer_id') }}",
               "{{ relabel_conflicting_duplicates(this, 'customer_id', 'customers') }}",
               "{{ reject_rate_gate(this) }}", "{{ customer_waits_again_after_gate(this) }}"],
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
        md5(row(first_name, last_name, email)::text) as _content_hash,
        {{ customer_version_key('_event_ts', '_partition', '_offset') }} as _vkey
    from parsed
),

{#- The run's valid versions and the versions still waiting; a version that a stored tie winner (same
    event_ts, higher partition/offset, other content) beats is flagged: it is a conflicting duplicate and never
    a candidate (macros/conflicting_duplicates.sql decides every tie group after the run). #}
valid as (
    select _bronze_id, _partition, _offset, _event_ts, customer_id, email, _content_hash, _vkey, true as _is_new
    from checked
    where _intrinsic_reason is null
    {%- if is_incremental() %}
    union all
    select _bronze_id, _partition, _offset, _event_ts, customer_id, email, _content_hash,
           {{ customer_version_key('_event_ts', '_partition', '_offset') }}, false
    from {{ this }}
    where _status = 'pending'
    {%- endif %}
),

tied as materialized (
    {{ stored_tie_winner('valid', this, 'customer_id', 'customers') }}
),

{#- What this run decides. #}
candidates as materialized (
    select _bronze_id, customer_id, email, _vkey, _is_new
    from tied
    where not _stored_winner_differs
),

ranked as (
    select
        _bronze_id,
        row_number() over (
            partition by customer_id order by _event_ts desc, _partition desc, _offset desc
        ) as _version_rank,
        min(_event_ts) over (partition by customer_id) as _first_seen_ts
    from tied
    where _is_new and not _stored_winner_differs
),

run_customers as (
    select distinct customer_id from candidates
),

{#- The version each customer of the run holds before it (macros/customer_emails.sql). #}
held as materialized (
    {%- if is_incremental() %}
    {{ current_customer_versions(silver, this, 'run_customers', 'customer_id') }}
    {%- else %}
    select null::varchar as customer_id, null::varchar as email, null::bigint as _bronze_id, null::text as _vkey
    where false
    {%- endif %}
),

{#- Every email the run's customers are involved in (claimed or held), and who outside the run holds one. #}
involved as (
    select customer_id, email from candidates
    union
    select customer_id, email from held
),

involved_emails as (
    select distinct email from involved
),

outside_claimants as (
    {%- if is_incremental() %}
    select distinct customer_id
    from ({{ current_customer_versions(silver, this, 'involved_emails', 'email') }}) as h
    where customer_id not in (select customer_id from run_customers)
    {%- else %}
    select null::varchar as customer_id
    where false
    {%- endif %}
),

outside_holders as materialized (  -- their current version: the email they hold now
    {%- if is_incremental() %}
    select customer_id, email
    from ({{ current_customer_versions(silver, this, 'outside_claimants', 'customer_id') }}) as o
    where email in (select email from involved_emails)
    {%- else %}
    select null::varchar as customer_id, null::varchar as email
    where false
    {%- endif %}
),

{#- An email two customers meet on sends every customer involved with it through the fold; so does every
    customer with a version still waiting. The rest cannot meet anyone: latest version wins. #}
contested as (
    select email
    from (select customer_id, email from involved union select customer_id, email from outside_holders) as x
    group by email
    having count(distinct customer_id) > 1
),

replayed as materialized (
    select customer_id from involved where email in (select email from contested)
    union
    select customer_id from candidates where not _is_new
),

replay as materialized (
    select r.bronze_id as _bronze_id, r.status as _status
    from {{ customer_email_schema() }}.customer_email_replay(
        (select coalesce(jsonb_agg(jsonb_build_object('b', _bronze_id, 'c', customer_id, 'e', email, 'k', _vkey)),
                         '[]'::jsonb)
         from candidates where _is_new and customer_id in (select customer_id from replayed)),
        (select coalesce(jsonb_agg(jsonb_build_object('b', _bronze_id, 'c', customer_id, 'e', email, 'k', _vkey)),
                         '[]'::jsonb)
         from candidates where not _is_new),
        (select coalesce(jsonb_agg(jsonb_build_object('b', _bronze_id, 'c', customer_id, 'e', email, 'k', _vkey)),
                         '[]'::jsonb)
         from held where customer_id in (select customer_id from replayed)),
        (select coalesce(jsonb_agg(jsonb_build_object('c', customer_id, 'e', email)), '[]'::jsonb)
         from outside_holders)
    ) as r
),

{#- A replayed customer whose held version stays gets its newest new (older) version admitted all the same,
    so that silver lowers created_at; created_at of a replayed customer = its first valid version ever. #}
replay_carrier as (
    select distinct on (c.customer_id) c._bronze_id
    from replay as p
    join candidates as c on c._bronze_id = p._bronze_id
    where c._is_new and p._status = 'superseded'
      and not exists (select 1 from replay as q join candidates as d on d._bronze_id = q._bronze_id
                      where d.customer_id = c.customer_id and q._status = 'admitted')
    order by c.customer_id, c._vkey collate "C" desc
),

replayed_first_seen as (
    select r.customer_id, least(n.first_seen_ts, s.first_seen_ts) as first_seen_ts
    from replayed as r
    left join (select customer_id, min(_event_ts) as first_seen_ts from valid where _is_new group by customer_id) as n
        on n.customer_id = r.customer_id
    left join lateral (
        {%- if is_incremental() %}
        select min(t._event_ts) as first_seen_ts
        from {{ this }} as t where t.customer_id = r.customer_id and t._status <> 'rejected'
        {%- else %}
        select null::timestamp as first_seen_ts
        {%- endif %}
    ) as s on true
),

decisions as (
    select
        c._bronze_id,
        c._is_new,
        p._bronze_id is not null as _replayed,
        (case when k._bronze_id is not null then 'admitted' else p._status end) as _replay_status,
        f.first_seen_ts as _replay_first_seen_ts
    from candidates as c
    left join replay as p on p._bronze_id = c._bronze_id
    left join replay_carrier as k on k._bronze_id = c._bronze_id
    left join replayed_first_seen as f on f.customer_id = c.customer_id
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
    (case
        when c._intrinsic_reason is not null then 'rejected'
        when t._stored_winner_differs then 'rejected'
        when d._replayed then d._replay_status
        when r._version_rank > 1 then 'superseded'
        else 'admitted'
    end)::varchar as _status,
    (case
        when c._intrinsic_reason is not null then c._intrinsic_reason
        when t._stored_winner_differs then 'conflicting_duplicate'
        when d._replayed and d._replay_status = 'pending' then 'duplicate_email'
    end)::text as _reject_reason,
    (case
        when t._stored_winner_differs then null
        when d._replayed then (case when d._replay_status = 'admitted' then d._replay_first_seen_ts end)
        when r._version_rank = 1 then r._first_seen_ts
    end)::timestamp as _first_seen_ts,
    c._content_hash::text as _content_hash,
    c.customer_id::varchar as customer_id,
    c.first_name::varchar as first_name,
    c.last_name::varchar as last_name,
    c.email::varchar as email
from checked as c
left join tied as t on t._bronze_id = c._bronze_id and t._is_new
left join ranked as r on r._bronze_id = c._bronze_id
left join decisions as d on d._bronze_id = c._bronze_id and d._is_new
{%- if is_incremental() %}
union all
{#- Versions that waited and are decided now (admitted or superseded). #}
select
    t._bronze_id, t._topic, t._partition, t._offset, t._record_key, t._event_ts, t._ingested_at,
    t._staged_at,
    {{ run_ts() }} as _decided_at,
    d._replay_status::varchar,
    null::text as _reject_reason,
    (case when d._replay_status = 'admitted' then d._replay_first_seen_ts end)::timestamp,
    t._content_hash,
    t.customer_id, t.first_name, t.last_name, t.email
from decisions as d
cross join lateral (select * from {{ this }} as x where x._bronze_id = d._bronze_id limit 1) as t
where not d._is_new and d._replay_status <> 'pending'
{%- endif %}
