{#-
  How the versions of one entity key are ordered, newest first (an ORDER BY list): by the Kafka
  timestamp, then by (partition, offset). `partition`/`offset` name the columns holding the version's
  Kafka coordinates (staging: _partition/_offset; silver: _kafka_partition/_kafka_offset).
-#}
{% macro version_order(entity, partition='_partition', offset='_offset') -%}
    _event_ts desc, {{ partition }} desc, {{ offset }} desc
{%- endmacro %}
