-- ops: what each stage of the pipeline recorded about its run, for the reconciliation and the *Pipeline health*
-- dashboard (include/superset/assets). Written by the tasks through shopstream.ops only, each write an upsert on
-- the table's key, so a cleared or retried task overwrites its own rows and never adds a second one.
-- Owned by the owner role like bronze (applied by scripts/postgres.sh as that role, idempotent); grants in
-- include/sql/security/30_database_grants.sql: the loader and dbt (Airflow's) roles write, analysts read.
CREATE SCHEMA IF NOT EXISTS ops;

-- One row per (logical hour, Kafka topic): what the extract task published (its last run of the hour wins).
CREATE TABLE IF NOT EXISTS ops.extract_published (
    logical_hour  TIMESTAMP NOT NULL,  -- UTC, the hour the messages belong to
    topic         VARCHAR   NOT NULL,  -- the Kafka topic name published to (SHOPSTREAM_TOPIC_<NAME> applied)
    base_topic    VARCHAR   NOT NULL,  -- customers, products, orders, events
    messages      INTEGER   NOT NULL,  -- messages delivered
    keys          INTEGER   NOT NULL,  -- distinct message keys among them (what the reconciliation counts)
    order_items   INTEGER,             -- orders only: items in the last version of each order
    offsets       JSONB,               -- {"<partition>": [first offset, last offset]} of the delivered messages
    dag_run_id    VARCHAR,
    recorded_at   TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    CONSTRAINT extract_published_pkey PRIMARY KEY (logical_hour, topic)
);

-- One row per (bronze run, Kafka topic): what its loads stored and what they left in Kafka.
CREATE TABLE IF NOT EXISTS ops.bronze_loads (
    dag_run_id             VARCHAR   NOT NULL,
    topic                  VARCHAR   NOT NULL,
    loaded_at              TIMESTAMP NOT NULL,  -- UTC, when the run's publish task recorded it
    inserted               BIGINT    NOT NULL,
    quarantined            BIGINT    NOT NULL,
    quarantined_by_reason  JSONB     NOT NULL DEFAULT '{}',  -- {"<reason>": messages}
    remaining_lag          BIGINT,              -- messages left in Kafka after the loads (Kafka lag)
    extract_hours          JSONB,               -- the extract hours this run loaded (reconciliation window)
    CONSTRAINT bronze_loads_pkey PRIMARY KEY (dag_run_id, topic)
);

-- One row per (hour, entity, Kafka topic): the last reconciliation of that hour.
CREATE TABLE IF NOT EXISTS ops.reconcile_results (
    hour                        TIMESTAMP NOT NULL,  -- UTC, the logical hour
    entity                      VARCHAR   NOT NULL,  -- customers, products, orders, order_items, events
    topic                       VARCHAR   NOT NULL,  -- the Kafka topic the entity's messages came from
    published                   INTEGER,             -- keys extract recorded as published (NULL: not recorded)
    bronze                      INTEGER   NOT NULL,
    bronze_quarantine           INTEGER   NOT NULL,
    silver                      INTEGER   NOT NULL,
    silver_quarantine           INTEGER   NOT NULL,
    gold                        INTEGER,             -- NULL: no per-key gold table (events)
    wrong_version               INTEGER   NOT NULL DEFAULT 0,  -- keys silver/gold hold in another version
    silver_quarantine_by_reason JSONB     NOT NULL DEFAULT '{}',  -- {"<reason>": messages of the hour}
    ok                          BOOLEAN   NOT NULL,
    mismatches                  TEXT[]    NOT NULL DEFAULT '{}',
    dag_run_id                  VARCHAR,
    reconciled_at               TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    CONSTRAINT reconcile_results_pkey PRIMARY KEY (hour, entity, topic)
);

COMMENT ON SCHEMA ops IS 'What the pipeline''s tasks recorded about their runs (shopstream.ops); the Pipeline health dashboard.';
