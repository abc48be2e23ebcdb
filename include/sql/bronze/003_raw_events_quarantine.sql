-- bronze.raw_events_quarantine: messages that cannot be stored in bronze.raw_events (invalid UTF-8, invalid
-- JSON, JSON that is not an object, tombstones, oversize values, missing/invalid keys, JSON that jsonb
-- rejects such as \u0000 or would change (a repeated key), invalid timestamps). Raw bytes are kept as
-- received; one row per Kafka coordinate.
-- Written in the same transaction as the batch and its offsets. Idempotent: applied at every loader start.
CREATE TABLE IF NOT EXISTS bronze.raw_events_quarantine (
    quarantine_id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic           VARCHAR   NOT NULL,
    "partition"     INTEGER   NOT NULL,
    "offset"        BIGINT    NOT NULL,
    event_ts        TIMESTAMP,            -- Kafka message timestamp (UTC); NULL when absent or out of range
    timestamp_ms    BIGINT,               -- the raw Kafka timestamp (ms since the epoch) as received
    timestamp_type  SMALLINT,             -- 0 not available, 1 CreateTime, 2 LogAppendTime
    record_key      BYTEA,                -- raw key bytes (NULL = no key)
    record_value    BYTEA,                -- raw value bytes (NULL = tombstone)
    value_bytes     INTEGER,              -- length of the value as received
    reason          VARCHAR   NOT NULL,   -- tombstone | oversize | invalid_utf8 | invalid_json | not_object |
                                          -- jsonb_rejected | duplicate_json_key:<path> | missing_key |
                                          -- invalid_key | invalid_timestamp |
                                          -- invalid_header | unsupported_schema_version |
                                          -- unsupported_content_type (shopstream.bronze.poison.REASONS)
    detail          TEXT,                 -- parser / PostgreSQL message
    quarantined_at  TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),  -- database clock (UTC)
    CONSTRAINT raw_events_quarantine_topic_partition_offset_key UNIQUE (topic, "partition", "offset")
);

COMMENT ON TABLE bronze.raw_events_quarantine IS
    'Kafka messages that could not be stored as JSON objects in bronze.raw_events, raw bytes and reason.';
