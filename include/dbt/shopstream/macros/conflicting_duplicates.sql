{#-
  Conflicting duplicates (docs/contracts.md "Ties"), one rule for every entity, a pure function of the
  messages staged so far - so an incremental history and a full refresh give the same verdicts:
    tie group  - the valid versions of one key equal in every version order key but (partition, offset)
                 (`version_tie_keys`: the Kafka timestamp; for orders also the status' place);
    its winner - the member with the highest (partition, offset);
    a loser    - a member whose content differs from the winner's: rejected, reason conflicting_duplicate,
                 unless the winner is pending (waits for a parent): then the loser is judged like any other
                 version (it may be the latest admissible one and be admitted) until the winner stops
                 being pending. Identical re-sends are never conflicts.
  A valid member is a staged row that is admitted, superseded, pending, or rejected for this very reason
  (the verdict can change again: a new winner with the loser's content, or a pending one).

  Two parts, both for the staging model of the entity (`relation` its table, `key` the entity key column,
  `entity` for the tie keys, `content_hash` an SQL expression over a staging row that tells versions apart -
  a column like `_content_hash`, or `order_content_hash()` where the table has no such column):
  - `relabel_conflicting_duplicates` (post-hook, BEFORE the reject-rate gate, after `staging_indexes`):
    re-decides every member of every tie group of the keys this run decided (new rows and re-decided pending
    rows: `_decided_at` = the run's time). It is the verdict: it rejects the losers of a non-pending winner
    (also rows staged or admitted in earlier runs, and newly arriving losers of a stored winner), and gives
    `superseded` back to a former loser that is no longer one (a new winner with its content, or a pending
    winner: such a row is always older than an admissible version, so superseded is what it is).
  - `stored_tie_winner` (inside a model that re-decides pending rows): per candidate, whether a stored tie
    winner (admitted or superseded, staged in an earlier run) beats it with other content. The model must
    not admit such a candidate: an admitted row carries the key's first-seen time to silver (created_at),
    and a loser the post-hook rejects afterwards would take it along. The model rejects a flagged candidate
    and judges the others as versions; the post-hook's verdict on them is the final one (it rejects the
    losers of a winner among the candidates, and gives `superseded` back to a flagged one whose group's
    winner turns out to be a candidate with its content).
  Cost: the post-hook reads the rows of this run (index on _decided_at) and probes each of their keys
  (index on the key and _event_ts, `staging_indexes(key=...)`); the model probes once per candidate.
-#}

{#- The members of a tie group by the conditions above (a staged row `s`). -#}
{% macro tie_group_member(prefix='') -%}
    ({{ prefix }}_status in ('admitted', 'superseded', 'pending') or {{ prefix }}_reject_reason = 'conflicting_duplicate')
{%- endmacro %}

{% macro relabel_conflicting_duplicates(relation, key, entity, content_hash='_content_hash') -%}
    {%- set tie_keys = version_tie_keys(entity, 's.') -%}
    with decided_keys as (
        select distinct {{ key }} as _decided_key
        from {{ relation }}
        where _decided_at = {{ run_ts() }} and {{ key }} is not null
    ),

    members as (
        select d._decided_key, m.*
        from decided_keys as d
        cross join lateral (  -- one index probe per key of the run, whatever the size of the table
            select s._bronze_id, s._status, s._reject_reason, s._partition, s._offset,
                   {%- for tie_key in tie_keys %} {{ tie_key }} as _tie_{{ loop.index }},{% endfor %}
                   {{ content_hash }} as _hash
            from {{ relation }} as s
            where s.{{ key }} = d._decided_key and {{ tie_group_member('s.') }}
            offset 0  -- keeps the probe a probe (a subquery without it is flattened into a hash join)
        ) as m
    ),

    verdicts as (
        select _bronze_id, _reject_reason,
               _hash <> first_value(_hash) over tie and first_value(_status) over tie <> 'pending' as _conflicting
        from members
        window tie as (
            partition by _decided_key{% for tie_key in tie_keys %}, _tie_{{ loop.index }}{% endfor %}
            order by _partition desc, _offset desc
        )
    ),

    changed as (
        select _bronze_id, _conflicting
        from verdicts
        where _conflicting <> (_reject_reason is not distinct from 'conflicting_duplicate')
    )

    update {{ relation }} as t
    set _status = case when c._conflicting then 'rejected' else 'superseded' end,
        _reject_reason = case when c._conflicting then 'conflicting_duplicate' end,
        _first_seen_ts = null,
        _decided_at = {{ run_ts() }}
    from changed as c
    where t._bronze_id = c._bronze_id
      and t._bronze_id = any(array(select _bronze_id from changed))  -- an index scan on the table, not a join
{%- endmacro %}

{#- The rows of the CTE `candidates` (all its columns) plus `_stored_winner_differs`: a member of the row's
    tie group that is stored and not a candidate (staged in an earlier run; admitted, superseded or a
    rejected loser - pending rows are candidates) has a higher (partition, offset) and, the highest of
    those, other content. Without stored rows (the first run, a full refresh): false. -#}
{% macro stored_tie_winner(candidates, relation, key, entity, content_hash='_content_hash') -%}
    {%- if is_incremental() %}
    select c.*, coalesce(w._hash <> c._content_hash, false) as _stored_winner_differs
    from {{ candidates }} as c
    left join lateral (  -- one index probe per candidate
        select {{ content_hash }} as _hash
        from {{ relation }} as s
        where s.{{ key }} = c.{{ key }}
          and ({{ version_tie_keys(entity, 's.') | join(', ') }}) = ({{ version_tie_keys(entity, 'c.') | join(', ') }})
          and (s._partition, s._offset) > (c._partition, c._offset)
          and (s._status in ('admitted', 'superseded') or s._reject_reason = 'conflicting_duplicate')
        order by s._partition desc, s._offset desc
        limit 1
    ) as w on true
    {%- else %}
    select c.*, false as _stored_winner_differs
    from {{ candidates }} as c
    {%- endif %}
{%- endmacro %}
