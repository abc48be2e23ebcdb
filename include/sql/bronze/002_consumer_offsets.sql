-- bronze.consumer_offsets: the loader's committed position per (consumer group, topic, partition).
-- Source of truth for where the next load starts: written in the SAME transaction as the rows it covers
-- (Kafka's own committed offsets are only a copy, so lag tools see progress). A loader changes a row only
-- while holding its row lock and only if next_offset still has the value it last read (compare-and-set), so
-- two loaders on the same partition can never both write the same messages.
-- Idempotent: applied by the loader at the start of every run.
CREATE TABLE IF NOT EXISTS bronze.consumer_offsets (
    consumer_group  VARCHAR   NOT NULL,
    topic           VARCHAR   NOT NULL,
    "partition"     INTEGER   NOT NULL,
    next_offset     BIGINT    NOT NULL CHECK (next_offset >= 0),  -- next Kafka offset to read
    updated_at      TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),  -- database clock (UTC)
    CONSTRAINT consumer_offsets_pkey PRIMARY KEY (consumer_group, topic, "partition")
);

COMMENT ON TABLE bronze.consumer_offsets IS
    'Next Kafka offset to load per (consumer group, topic, partition); committed with the rows (shopstream.bronze).';
