{#-
  Circuit breaker on a staging model: fails when the latest staged batch (rows with the highest
  _staged_at) has at least var('reject_rate_min_rows') rows and more than var('max_reject_ratio') of them
  were rejected. A mostly-garbage batch means something upstream broke (a producer bug, a schema change).
  The decision itself is the model's post-hook (macros/reject_rate_gate.sql): the whole flagged batch is
  rejected ('rejected_batch'), so it never reaches silver, not even in a later run; this test makes the run
  fail so that someone looks. Everything is in silver.quarantine.
  On-call: docs/runbook.md, "Reject-rate gate".
-#}
{% test reject_rate_below(model, max_ratio=none, min_rows=none) %}
{%- set max_ratio = max_ratio if max_ratio is not none else var('max_reject_ratio') -%}
{%- set min_rows = min_rows if min_rows is not none else var('reject_rate_min_rows') -%}
with latest as (
    select count(*) as staged, count(*) filter (where _status = 'rejected') as rejected
    from {{ model }}
    where _staged_at >= {{ watermark(model, '_staged_at', 'timestamp', "'-infinity'") }}
)
select staged, rejected, round(rejected::numeric / nullif(staged, 0), 3) as reject_ratio
from latest
where staged >= {{ min_rows | int }}
  and rejected::numeric / staged > {{ max_ratio | float }}
{% endtest %}
