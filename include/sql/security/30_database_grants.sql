-- Per-database part 2: the grants (see 20_database_begin.sql). Everything not granted here is denied:
--   loader  : CONNECT, TEMP (its COPY staging table); USAGE on bronze; SELECT+INSERT on raw_events and
--             raw_events_quarantine; SELECT+INSERT+UPDATE on consumer_offsets (its compare-and-set offsets);
--             the identity sequences. No UPDATE/DELETE/TRUNCATE of raw events, no DDL, no silver/gold/staging.
--   dbt     : CONNECT, TEMP, CREATE (its own schemas); owns staging/silver/gold; SELECT on bronze (and the
--             sequence bronze.stable_high_watermark() reads). No write on bronze.
--   analyst : CONNECT; USAGE on gold and SELECT on its tables and views, now and future ones (default
--             privileges of the dbt role); USAGE on ops and SELECT on its tables. Nothing in bronze, staging or
--             silver.
--   ops     : (include/sql/ops, owned by the owner role) the tasks' run records: the loader (bronze publish)
--             and dbt (extract, reconcile: Airflow's warehouse role) SELECT+INSERT+UPDATE (their upserts), no
--             DELETE/TRUNCATE/DDL; analysts SELECT.
RESET ROLE;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"loader";
GRANT CONNECT, TEMPORARY, CREATE ON DATABASE :"db" TO :"dbt";
GRANT CONNECT ON DATABASE :"db" TO :"analyst";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- bronze: start from nothing, then grant exactly what each role needs.
REVOKE ALL ON SCHEMA bronze FROM PUBLIC, :"loader", :"dbt", :"analyst";
REVOKE ALL ON ALL TABLES IN SCHEMA bronze FROM PUBLIC, :"loader", :"dbt", :"analyst";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA bronze FROM PUBLIC, :"loader", :"dbt", :"analyst";
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA bronze FROM PUBLIC, :"loader", :"dbt", :"analyst";
GRANT USAGE ON SCHEMA bronze TO :"loader", :"dbt";
GRANT SELECT, INSERT ON bronze.raw_events, bronze.raw_events_quarantine TO :"loader";
GRANT SELECT, INSERT, UPDATE ON bronze.consumer_offsets TO :"loader";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA bronze TO :"loader";
GRANT SELECT ON ALL TABLES IN SCHEMA bronze TO :"dbt";
GRANT SELECT ON ALL SEQUENCES IN SCHEMA bronze TO :"dbt";
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA bronze TO :"loader", :"dbt";

-- dbt's schemas: private to dbt except gold, which analysts read.
REVOKE ALL ON SCHEMA staging, silver, gold FROM PUBLIC, :"loader", :"analyst";
REVOKE ALL ON ALL TABLES IN SCHEMA gold FROM :"analyst";
GRANT USAGE ON SCHEMA gold TO :"analyst";
GRANT SELECT ON ALL TABLES IN SCHEMA gold TO :"analyst";
ALTER DEFAULT PRIVILEGES FOR ROLE :"dbt" IN SCHEMA gold GRANT SELECT ON TABLES TO :"analyst";

-- ops: the tasks' run records (shopstream.ops upserts them); read by the Pipeline health dashboard.
REVOKE ALL ON SCHEMA ops FROM PUBLIC, :"loader", :"dbt", :"analyst";
REVOKE ALL ON ALL TABLES IN SCHEMA ops FROM PUBLIC, :"loader", :"dbt", :"analyst";
GRANT USAGE ON SCHEMA ops TO :"loader", :"dbt", :"analyst";
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA ops TO :"loader", :"dbt";
GRANT SELECT ON ALL TABLES IN SCHEMA ops TO :"analyst";
