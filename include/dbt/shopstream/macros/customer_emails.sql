{#-
  Email uniqueness of customers, decided message by message in the order bronze received them (bronze_id),
  so that no batching (hourly runs, a backfill, a full refresh) changes who holds an email.

  Why a PL/pgSQL function: the decision is a fold over the messages (each one sees the state the previous
  ones left), with a matching step inside; SQL's window functions and recursive CTEs cannot carry that state.
  stg_customers calls it only for the customers whose emails meet another customer's in the run (a handful,
  usually none); every other customer is decided set-based (latest version wins).

  The rule (docs/contracts.md "Email uniqueness"), for each valid version in bronze order:
  - a version not newer than the one the customer holds changes nothing (superseded);
  - a newer one becomes a candidate; then every customer with candidates (a "mover") gets the newest
    candidate whose email it can have, or keeps what it holds: deferred acceptance (Gale-Shapley) with
    movers proposing their candidates newest first and their held version last. An email held by a customer
    that is not moving is taken. Among proposers of one email the customer holding it comes first, then the
    claim received first (bronze_id). The outcome does not depend on the order of proposals, so a swap
    (A a->b, B b->a) or a chain applies as soon as its last message is received;
  - candidates older than the version a customer gets are superseded; newer ones wait (pending,
    duplicate_email) and are decided again whenever a later message moves any customer.
  tests/e2e/oracle.py (`customers_by_arrival`) implements the same rule in Python; the property test checks
  both against each other on random histories, batch by batch and as a full refresh.
-#}

{#- The schema the functions live in (the staging schema: dbt owns it). -#}
{% macro customer_email_schema() -%}
    {{ generate_schema_name('staging', none) }}
{%- endmacro %}

{#- A version's place in version order as text that sorts like (event_ts, partition, offset). -#}
{% macro customer_version_key(event_ts, partition, offset) -%}
    (to_char({{ event_ts }}, 'YYYYMMDDHH24MISSUS') || lpad({{ partition }}::text, 6, '0')
     || lpad({{ offset }}::text, 20, '0'))
{%- endmacro %}

{#- on-run-start: create the functions before any model or unit test of the invocation needs them, when
    they are missing or their definition changed. Not replaced on every run: two dbt invocations replacing one
    function at the same time fail ("tuple concurrently updated"), and a cleared model task may build while
    another invocation runs. The definition's md5 is written into both bodies and compared. -#}
{% macro create_customer_email_functions() -%}
    {%- set ddl = customer_email_functions_ddl() -%}
    {%- set version = local_md5(ddl) -%}
    {%- set current = 0 -%}
    {%- if execute -%}
        {%- set current = run_query(
            "select count(*) from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace "
            ~ "where n.nspname = '" ~ customer_email_schema() ~ "' "
            ~ "and p.proname in ('customer_email_settle', 'customer_email_replay') "
            ~ "and p.prosrc like '%" ~ version ~ "%'").columns[0].values()[0] -%}
    {%- endif -%}
    {%- if current | int == 2 -%}
        select 'customer email functions are current'
    {%- else -%}
        {{ ddl | replace('__DEFINITION_MD5__', version) }}
    {%- endif -%}
{%- endmacro %}

{% macro customer_email_functions_ddl() -%}
{%- set schema = customer_email_schema() -%}
create schema if not exists {{ schema }};

{#- One matching step. held: customer -> version {b, c, e, k}; holder: email -> customer; waiting:
    customer -> {bronze_id: version}. Returns the three after the movers got what they can have. #}
create or replace function {{ schema }}.customer_email_settle(
    inout held jsonb, inout holder jsonb, inout waiting jsonb
) language plpgsql as $fn$
-- definition __DEFINITION_MD5__
declare
    movers text[];
    prefs jsonb := '{}';    -- customer -> its proposals, newest first, the held version last
    nxt jsonb := '{}';      -- customer -> index of its next proposal
    granted jsonb := '{}';  -- email -> {"c": customer, "v": version}
    queue text[];
    c text;
    owner text;
    e text;
    v jsonb;
    cur jsonb;
    i int;
begin
    select coalesce(array_agg(w.k order by w.k), '{}') into movers
    from jsonb_each(waiting) as w(k, x) where w.x <> '{}'::jsonb;
    if cardinality(movers) = 0 then
        return;
    end if;
    foreach c in array movers loop
        select jsonb_agg(w.x order by w.x->>'k' collate "C" desc) into v from jsonb_each(waiting->c) as w(b, x);
        if held ? c then
            v := v || jsonb_build_array(held->c);
        end if;
        prefs := prefs || jsonb_build_object(c, v);
        nxt := nxt || jsonb_build_object(c, 0);
    end loop;
    queue := movers;
    while cardinality(queue) > 0 loop
        c := queue[1];
        queue := queue[2:];
        loop
            i := (nxt->>c)::int;
            exit when i >= jsonb_array_length(prefs->c);  -- nothing left: the customer stays as it is
            v := prefs->c->i;
            e := v->>'e';
            owner := holder->>e;
            if owner is not null and owner <> c and not (owner = any(movers)) then
                nxt := nxt || jsonb_build_object(c, i + 1);  -- kept by a customer that is not moving
                continue;
            end if;
            cur := granted->e;
            if cur is null then
                granted := granted || jsonb_build_object(e, jsonb_build_object('c', c, 'v', v));
                exit;
            end if;
            if (coalesce(owner, '') <> c, (v->>'b')::bigint)
               < (coalesce(owner, '') <> cur->>'c', (cur->'v'->>'b')::bigint) then
                granted := granted || jsonb_build_object(e, jsonb_build_object('c', c, 'v', v));
                nxt := nxt || jsonb_build_object(cur->>'c', (nxt->>(cur->>'c'))::int + 1);
                queue := queue || (cur->>'c');
                exit;
            end if;
            nxt := nxt || jsonb_build_object(c, i + 1);
        end loop;
    end loop;
    foreach c in array movers loop
        if held ? c then
            holder := holder - (held->c->>'e');
        end if;
    end loop;
    for e, cur in select g.key, g.value from jsonb_each(granted) as g loop
        c := cur->>'c';
        holder := holder || jsonb_build_object(e, c);
        held := held || jsonb_build_object(c, cur->'v');
        waiting := waiting || jsonb_build_object(c, coalesce(
            (select jsonb_object_agg(w.b, w.x) from jsonb_each(waiting->c) as w(b, x)
             where w.x->>'k' collate "C" > cur->'v'->>'k' collate "C"), '{}'::jsonb));
    end loop;
end
$fn$;

{#- The fold. p_new: the run's new valid versions {b, c, e, k}; p_waiting: versions still waiting from
    earlier runs; p_held: the version each of these customers holds; p_holders: {c, e} of emails held by
    customers outside the fold. Returns every version of p_new and p_waiting with its status. #}
create or replace function {{ schema }}.customer_email_replay(
    p_new jsonb, p_waiting jsonb, p_held jsonb, p_holders jsonb
) returns table (bronze_id bigint, status text) language plpgsql as $fn$
-- definition __DEFINITION_MD5__
declare
    held jsonb;
    holder jsonb;
    waiting jsonb := '{}';
    v jsonb;
    c text;
begin
    select coalesce(jsonb_object_agg(x->>'c', x), '{}') into held from jsonb_array_elements(p_held) as x;
    select coalesce(jsonb_object_agg(x->>'e', x->>'c'), '{}') into holder
    from (select x from jsonb_array_elements(p_held) as x
          union all select x from jsonb_array_elements(p_holders) as x) as h;
    for v in select x from jsonb_array_elements(p_waiting) as x loop
        waiting := waiting || jsonb_build_object(v->>'c',
            coalesce(waiting->(v->>'c'), '{}') || jsonb_build_object(v->>'b', v));
    end loop;
    for v in select x from jsonb_array_elements(p_new) as x order by (x->>'b')::bigint loop
        c := v->>'c';
        if held ? c and v->>'k' collate "C" <= held->c->>'k' collate "C" then
            continue;  -- not newer than the held version: superseded
        end if;
        waiting := waiting || jsonb_build_object(c, coalesce(waiting->c, '{}') || jsonb_build_object(v->>'b', v));
        select s.held, s.holder, s.waiting into held, holder, waiting
        from {{ schema }}.customer_email_settle(held, holder, waiting) as s;
    end loop;
    return query
    select (x->>'b')::bigint,
           case when held->(x->>'c')->>'b' = x->>'b' then 'admitted'
                when coalesce(waiting->(x->>'c'), '{}') ? (x->>'b') then 'pending'
                else 'superseded' end
    from (select x from jsonb_array_elements(p_new) as x
          union all select x from jsonb_array_elements(p_waiting) as x) as r;
end
$fn$
{%- endmacro %}

{#- The current version (customer_id, email, _bronze_id, _vkey) of the customers matching `keys` (a CTE with
    a column `column`: customer_id or email): silver's row, or a newer admitted staging row silver has not
    consumed yet (a failed silver run). Silver is probed by index (customer_id: primary key, email: UNIQUE). -#}
{% macro current_customer_versions(silver, staging, keys, column) -%}
    select distinct on (customer_id) customer_id, email, _bronze_id, _vkey
    from (
        {%- if silver is not none %}
        select s.customer_id, s.email, s._bronze_id,
               {{ customer_version_key('s._event_ts', 's._kafka_partition', 's._kafka_offset') }} as _vkey
        from {{ keys }} as k
        cross join lateral (select * from {{ silver }} as t where t.{{ column }} = k.{{ column }} limit 1) as s
        union all
        {%- endif %}
        select a.customer_id, a.email, a._bronze_id,
               {{ customer_version_key('a._event_ts', 'a._partition', 'a._offset') }}
        from {{ staging }} as a
        where a._status = 'admitted'
          {%- if silver is not none %}
          and a._decided_at > {{ ts_watermark(silver, '_decided_at') }}
          {%- endif %}
          and a.{{ column }} in (select {{ column }} from {{ keys }})
    ) as v
    order by customer_id, _vkey collate "C" desc
{%- endmacro %}

{#- Post-hook of stg_customers, after the reject-rate gate: when the gate rejected this run's batch, the
    versions that waited and were decided in this run wait again - their decision followed from the rejected
    batch (a customer of it moving away from an email), which never happened as far as silver is concerned. -#}
{% macro customer_waits_again_after_gate(relation) -%}
    update {{ relation }}
    set _status = 'pending', _reject_reason = 'duplicate_email', _first_seen_ts = null
    where _decided_at = {{ run_ts() }}
      and _staged_at <> {{ run_ts() }}
      and exists (select 1 from {{ relation }} where _staged_at = {{ run_ts() }} and _reject_reason = 'rejected_batch')
{%- endmacro %}
