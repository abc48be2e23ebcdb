{#-
  incremental_strategy='upsert': INSERT ... ON CONFLICT (unique_key) DO UPDATE.

  Why not dbt's `merge` / `delete+insert`: both join the whole target to the increment, and with a
  multi-million-row target PostgreSQL may hash-join it (a full scan per run). ON CONFLICT probes the
  unique index row by row, so the cost follows the increment. It also updates in place (never deletes),
  so foreign keys pointing at the target hold at every statement, and a row's UNIQUE columns (email) are
  checked against the committed state row by row.
  The model must emit at most one row per unique_key (enforced by the models' DISTINCT ON).
-#}
{% macro get_incremental_upsert_sql(arg_dict) -%}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set source = arg_dict["temp_relation"] -%}
    {%- set unique_key = arg_dict["unique_key"] -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- if not keys -%}
        {{ exceptions.raise_compiler_error("incremental_strategy 'upsert' needs a unique_key") }}
    {%- endif -%}
    {%- set names = arg_dict["dest_columns"] | map(attribute="name") | list -%}
    {%- set cols = get_quoted_csv(names) -%}
    {%- set key_names = keys | map("lower") | list -%}
    analyze {{ source }};
    insert into {{ target }} ({{ cols }})
    select {{ cols }} from {{ source }}
    on conflict ({{ keys | join(', ') }}) do update set
    {%- for name in names if name | lower not in key_names %}
        {{ adapter.quote(name) }} = excluded.{{ adapter.quote(name) }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#-
  incremental_strategy='replace_by_key': delete every target row whose unique_key value occurs in the
  increment, then insert the increment's rows that satisfy the model's `replace_keep` config (a SQL
  predicate, default: all rows). Like dbt's delete+insert, but the temporary table is analysed first so
  the planner sees its real size (and probes the target's index on the key instead of scanning it), and a
  model can emit a placeholder row for a key whose rows must simply disappear (e.g. a day that no longer
  has any order: `replace_keep: "orders > 0"`). A single-column key is deleted with `key = any(array(...))`,
  an index scan on the target's key index whatever the join settings.
-#}
{% macro get_incremental_replace_by_key_sql(arg_dict) -%}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set source = arg_dict["temp_relation"] -%}
    {%- set unique_key = arg_dict["unique_key"] -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- if not keys -%}
        {{ exceptions.raise_compiler_error("incremental_strategy 'replace_by_key' needs a unique_key") }}
    {%- endif -%}
    {%- set cols = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    {%- set keep = config.get("replace_keep") -%}
    analyze {{ source }};
    {%- if keys | length == 1 %}
    {#- `= any(array(...))`: an index scan on the key column, never a join that could scan the target #}
    delete from {{ target }}
    where {{ keys[0] }} = any(array(select distinct {{ keys[0] }} from {{ source }}));
    {%- else %}
    delete from {{ target }} as t
    using (select distinct {{ keys | join(', ') }} from {{ source }}) as s
    where {% for k in keys %}t.{{ k }} = s.{{ k }}{{ " and " if not loop.last }}{% endfor %};
    {%- endif %}
    insert into {{ target }} ({{ cols }})
    select {{ cols }} from {{ source }}{% if keep %} where {{ keep }}{% endif %}
{%- endmacro %}
