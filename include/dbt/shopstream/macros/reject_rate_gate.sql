{#-
  The reject-rate gate's decision (post-hook of every staging model): when the batch this run staged has at
  least var('reject_rate_min_rows') rows and more than var('max_reject_ratio') of them were rejected, its
  admitted and pending rows are rejected too, reason 'rejected_batch': a mostly-garbage batch means
  something upstream broke (a producer bug, a schema change), so none of it is trusted - the flagged batch
  never reaches silver, in this run or any later one. The test `reject_rate_below` (same vars) then fails
  the run and skips everything downstream in it: that is the page. Later runs stage and admit new batches as
  usual; what the flagged batch should have brought comes back by re-sending it corrected (a newer version
  of each key), or, when the batch was fine after all, by re-deciding all of staging with a full refresh
  (docs/runbook.md, "Reject-rate gate").
  Same transaction as the model: the rows of this run are those with _staged_at = the transaction time.
-#}
{% macro reject_rate_gate(relation) -%}
    {#- The batch's verdict is an uncorrelated scalar subquery: PostgreSQL computes it once (an InitPlan).
        Written as a join with a one-row CTE, the planner - its statistics know nothing of the rows this
        transaction just inserted - ran the count once per staged row: quadratic, 27 minutes for a
        70,000-row batch of a month's backfill (bench_backfill, 2026-12-05). #}
    update {{ relation }} as s
    set _status = 'rejected', _reject_reason = 'rejected_batch'
    where s._staged_at = {{ run_ts() }}
      and s._status in ('admitted', 'pending')
      and (
          select count(*) >= {{ var('reject_rate_min_rows') | int }}
                 and count(*) filter (where b._status = 'rejected')::numeric / nullif(count(*), 0)
                     > {{ var('max_reject_ratio') | float }}
          from {{ relation }} as b
          where b._staged_at = {{ run_ts() }}
      )
{%- endmacro %}
