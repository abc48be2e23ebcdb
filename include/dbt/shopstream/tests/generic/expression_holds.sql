{#- Fails with the rows for which `expression` is not true. (Own name: the project installs no packages, and
    a test named like dbt_utils.expression_is_true would clash with it if dbt_utils were ever added.) -#}
{% test expression_holds(model, expression) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
