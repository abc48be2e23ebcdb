-- Indexes the dbt staging models need on bronze.raw_events (owned by the bronze loader; see
-- include/sql/bronze/001_raw_events.sql). Idempotent. With them every dbt increment reads only the new
-- rows, whatever the size of the history (bench/bench_dbt.py):
--   (topic, bronze_id):              each staging model reads `topic = X AND bronze_id > watermark`;
--   (topic, ingested_at, bronze_id): the lookback for late-committed rows reads `topic = X AND ingested_at
--                                    >= <previous run> - N minutes AND bronze_id <= watermark` inside the index.
-- Apply after the bronze DDL (the loader applies include/sql/bronze/*.sql; apply this folder too).
-- On a big existing table, CREATE INDEX CONCURRENTLY avoids blocking the loader (not in a transaction).
CREATE INDEX IF NOT EXISTS raw_events_topic_bronze_id_idx ON bronze.raw_events (topic, bronze_id);
CREATE INDEX IF NOT EXISTS raw_events_topic_ingested_at_idx ON bronze.raw_events (topic, ingested_at, bronze_id);
