{#-
  Models land in exactly the schema they configure (staging, silver, gold), not dbt's default
  "<target schema>_<custom schema>". Models without a custom schema use the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
