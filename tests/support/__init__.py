"""Helpers shared by several test folders (and bench/): one home for them, outside the shipped package.

- project_env: the environment scripts/common.sh builds from .env, scripts/*.sh runs, the superuser's DSN.
- contract_messages: Kafka messages shaped like docs/contracts.md (one consistent hour, one bad message per
  quarantine rule).
- warehouse: a throwaway warehouse for dbt tests: bronze written the way the loader writes it, `dbt build`.
- bronze_messages: known message sets produced to Kafka, and bronze read back in the same shape.
- binary_copy: reads back the binary COPY rows of shopstream.bronze.copyrows.
- private_services: private PostgreSQL / Kafka instances that a test may stop, crash or break.
- throwaway: fresh Kafka topics and PostgreSQL databases with unique names, and their cleanup.
- fake_clock: a time()/sleep() pair that sleeping advances at once (retries, rate limits without waiting).

Helpers that one folder uses stay beside it (tests/faults/harness.py, tests/faults/fault_report.py,
tests/e2e/harness.py, tests/e2e/oracle.py); fixtures live in the conftest.py files.
"""
