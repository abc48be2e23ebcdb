{#-
  on-run-end: every foreign key the models' contracts declare exists in the warehouse; a missing one is
  created again.

  Why: a full refresh replaces a parent table and drops the old one with CASCADE, which drops the foreign
  keys of its children; the children get theirs back only when they are rebuilt in the same invocation.
  When a child fails or is not selected (a failed `--full-refresh`, `--select customers`), its foreign keys
  would stay dropped for good: incremental runs never re-apply a contract's constraints. This hook runs at
  the end of every invocation, whatever failed, so a run never leaves the contracts weaker than before.
  The rows are checked as the constraint is added; if some no longer match (a child that kept rows a
  rebuilt parent no longer has), the key is added NOT VALID - enforced for every new row - with a WARNING
  naming it (validate it after the next full refresh: ALTER TABLE ... VALIDATE CONSTRAINT).
  Catalog lookups only when nothing is missing.
-#}
{% macro restore_foreign_keys() -%}
    {%- if execute -%}
        {%- set by_name = {} -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
            {%- do by_name.update({node.name: node}) -%}
        {%- endfor -%}
        {%- for node in by_name.values() -%}
            {%- for column in node.columns.values() -%}
                {%- for constraint in column.constraints if constraint.type == 'foreign_key' -%}
                    {%- set parent_name = constraint.to | replace('ref(', '') | replace(')', '')
                                          | replace('"', '') | replace("'", '') | trim -%}
                    {%- set parent = by_name.get(parent_name) -%}
                    {%- if parent is none -%}
                        {{ exceptions.raise_compiler_error("restore_foreign_keys: " ~ node.name ~ "." ~ column.name
                            ~ " references " ~ constraint.to ~ ", which is not a model of this project") }}
                    {%- endif -%}
                    {%- do run_query(foreign_key_sql(node.schema ~ '.' ~ node.alias, column.name,
                                                      parent.schema ~ '.' ~ parent.alias, constraint.to_columns[0])) -%}
                {%- endfor -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- Create the foreign key child(column) -> parent(parent_column) unless both tables exist and it does. -#}
{% macro foreign_key_sql(child, column, parent, parent_column) -%}
do $restore_fk$
begin
    if to_regclass('{{ child }}') is null or to_regclass('{{ parent }}') is null then
        return;  -- not built yet
    end if;
    if exists (
        select 1 from pg_constraint as c
        join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        where c.contype = 'f' and c.conrelid = '{{ child }}'::regclass
          and c.confrelid = '{{ parent }}'::regclass and a.attname = '{{ column }}'
    ) then
        return;
    end if;
    begin
        alter table {{ child }} add foreign key ({{ column }}) references {{ parent }} ({{ parent_column }});
        raise warning 'restored the foreign key {{ child }}({{ column }}) -> {{ parent }} (dropped by a rebuild of {{ parent }})';
    exception when foreign_key_violation then
        alter table {{ child }} add foreign key ({{ column }}) references {{ parent }} ({{ parent_column }}) not valid;
        raise warning 'restored the foreign key {{ child }}({{ column }}) -> {{ parent }} NOT VALID: rows of {{ child }} reference rows {{ parent }} no longer has; run a full refresh, then ALTER TABLE {{ child }} VALIDATE CONSTRAINT';
    end;
end
$restore_fk$
{%- endmacro %}
