"""dbt (silver/gold) for ShopStream: where the project lives, how Cosmos runs it, and a runner for scripts/tests.

`paths` has no heavy imports (the DAG file and tests use it freely); `cosmos_config` builds Cosmos' configs;
`runner` runs dbt in-process (dbtRunner) against a warehouse given by connection parameters.
"""
