-- bronze.raw_events: every Kafka message exactly once, as received (spec: docs/contracts.md).
-- Idempotent: applied by the loader at the start of every run.
CREATE SCHEMA IF NOT EXISTS bronze;

CREATE TABLE IF NOT EXISTS bronze.raw_events (
    -- Ordered load id: dbt increments read rows above their watermark (with a lookback).
    bronze_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic         VARCHAR   NOT NULL,
    record_key    VARCHAR,
    record_value  JSONB     NOT NULL,
    "partition"   INTEGER   NOT NULL,
    "offset"      BIGINT    NOT NULL,
    event_ts      TIMESTAMP NOT NULL,  -- Kafka message timestamp (UTC)
    ingested_at   TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),  -- database clock (UTC)
    CONSTRAINT raw_events_topic_partition_offset_key UNIQUE (topic, "partition", "offset")
);

COMMENT ON TABLE bronze.raw_events IS
    'Raw Kafka messages, append-only, one row per (topic, partition, offset). Loaded by shopstream.bronze.';
