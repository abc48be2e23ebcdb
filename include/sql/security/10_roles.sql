-- Cluster-wide roles of ShopStream's least-privilege model (run by the superuser in the `postgres` database;
-- scripts/postgres.sh and docker/postgres-init apply it on every start, idempotently). psql variables:
--   owner                    owns the bronze schema and the warehouse database, applies the bronze DDL (NOLOGIN:
--                            only the superuser becomes it, with SET ROLE, at setup)
--   loader, loader_pw        the bronze loader's login (AIRFLOW_CONN_BRONZE_DB)
--   analyst, analyst_pw      analysts / BI, read-only on gold (AIRFLOW_CONN_ANALYST_DB)
-- The dbt role is the warehouse role (AIRFLOW_CONN_WAREHOUSE_DB), created by the caller.
-- Grants are per database: 20_database.sql.
SELECT pg_advisory_lock(7161412180392961348);  -- serialises concurrent setups (CREATE ROLE has no IF NOT EXISTS)
SELECT format('CREATE ROLE %I NOLOGIN', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
ALTER ROLE :"owner" WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
SELECT format('CREATE ROLE %I LOGIN', :'loader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'loader') \gexec
ALTER ROLE :"loader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
SELECT format('ALTER ROLE %I WITH PASSWORD %L', :'loader', :'loader_pw') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'analyst')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'analyst') \gexec
ALTER ROLE :"analyst" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
SELECT format('ALTER ROLE %I WITH PASSWORD %L', :'analyst', :'analyst_pw') \gexec
-- Analysts never write, whatever a future grant says: their sessions are read-only by default.
ALTER ROLE :"analyst" SET default_transaction_read_only = on;
SELECT pg_advisory_unlock(7161412180392961348);
