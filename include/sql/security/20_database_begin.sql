-- Per-database part 1 (run by the superuser connected to the warehouse database, inside one transaction with
-- 30_database_grants.sql; between them the caller streams include/sql/bronze/*.sql and include/sql/dbt/*.sql
-- under SET ROLE :"owner", so the bronze objects belong to the owner role - not to the loader, not to dbt).
-- psql variables: db, owner, dbt, loader, analyst.
--
-- Why the DDL is applied here and not by the loader: creating or replacing bronze's tables, function and
-- indexes needs CREATE on the schema and ownership of the objects, and ownership is exactly what allows
-- DROP/TRUNCATE/ALTER. A loader that can run the DDL can also destroy bronze; this one can only append.
--
-- Serialised with the loader's own DDL (shopstream.bronze.loader.DDL_LOCK_KEY, b'cbronzeD'), so an older
-- loader that still applies the DDL never runs it half-way through this.
SELECT pg_advisory_xact_lock(7161412180392961348);
ALTER DATABASE :"db" OWNER TO :"owner";
-- A database that was set up before the roles existed (one role owned everything): hand bronze to the owner.
SELECT format('ALTER SCHEMA bronze OWNER TO %I', :'owner')
  FROM pg_namespace WHERE nspname = 'bronze' AND pg_get_userbyid(nspowner) <> :'owner' \gexec
SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'bronze' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND pg_get_userbyid(c.relowner) <> :'owner' \gexec
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'owner')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'bronze' AND pg_get_userbyid(p.proowner) <> :'owner' \gexec
-- dbt's schemas exist before dbt first runs, owned by dbt (it creates and replaces their tables and views).
SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s, :'dbt') FROM unnest(ARRAY['staging', 'silver', 'gold']) AS s \gexec
SELECT format('ALTER SCHEMA %I OWNER TO %I', nspname, :'dbt')
  FROM pg_namespace WHERE nspname IN ('staging', 'silver', 'gold') AND pg_get_userbyid(nspowner) <> :'dbt' \gexec
SET ROLE :"owner";
