{#- Fails with every combination of `columns` that occurs more than once. (Own name, not dbt_utils'
    unique_combination_of_columns: the project installs no packages.) -#}
{% test unique_column_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
