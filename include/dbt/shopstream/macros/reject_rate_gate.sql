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
    with batch as (
        select count(*) as staged, count(*) filter (where _status = 'rejected') as rejected
        from {{ relation }}
        where _staged_at = {{ run_ts() }}
    )
    update {{ relation }} as s
    set _status = 'rejected', _reject_reason = 'rejected_batch'
    from batch as b
    where s._staged_at = {{ run_ts() }}
      and s._status in ('admitted', 'pending')
      and b.staged >= {{ var('reject_rate_min_rows') | int }}
      and b.rejected::numeric / b.staged > {{ var('max_reject_ratio') | float }}
{%- endmacro %}
