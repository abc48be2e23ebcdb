# ShopStream — the two commands are `make demo` and `make test`; the rest is for daily work.
SHELL := /bin/bash
.DEFAULT_GOAL := help
S := scripts

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

demo: ## the whole pipeline for one hour, offline (sets up venv and services itself), then a gold summary
	@$(S)/demo.sh $(HOUR)

test: ## the full test suite against real PostgreSQL and Kafka (starts them if needed)
	@$(S)/test.sh $(PYTEST_ARGS)

test-quick: ## the suite without the slow, fault and browser tests
	@$(S)/test.sh -m "not slow and not faults and not browser" $(PYTEST_ARGS)

faults: ## the fault-injection suite with its summary
	@$(S)/test.sh -m faults $(PYTEST_ARGS)

property: ## the property test on many random histories, with shrinking (EXAMPLES=200 SEED=1 by default)
	@SHOPSTREAM_PROPERTY_EXAMPLES=$(or $(EXAMPLES),200) SHOPSTREAM_PROPERTY_SEED=$(or $(SEED),1) \
	    $(S)/test.sh -x tests/property $(PYTEST_ARGS)

venv: ## create/refresh .venv from requirements-dev.lock (the runtime set plus the test tools)
	@$(S)/bootstrap.sh --dev

lock: ## re-pin requirements.lock (runtime) and requirements-dev.lock (runtime pins + test tools)
	@uv pip compile requirements.txt -o requirements.lock --python-version 3.11
	@uv pip compile requirements-dev.txt -o requirements-dev.lock --python-version 3.11

lock-bi: ## re-pin requirements-bi.lock (Superset's own venv, .venv-bi) from requirements-bi.txt
	@uv pip compile requirements-bi.txt -o requirements-bi.lock --python-version 3.11

up: ## start PostgreSQL, Kafka and the local DummyJSON server (idempotent)
	@$(S)/services.sh up

down: ## stop every local service (data is kept under .local/)
	@$(S)/services.sh down

status: ## show what runs
	@$(S)/services.sh status

airflow: up ## start the Airflow UI on http://localhost:8080 (login from .env)
	@$(S)/airflow.sh start

airflow-stop: ## stop the local Airflow
	@$(S)/airflow.sh stop

bi: ## start Superset on gold, dashboards imported, on http://localhost:8088 (SUPERSET_PORT; login from .env)
	@$(S)/superset.sh start

bi-stop: ## stop the local Superset
	@$(S)/superset.sh stop

psql: ## psql into the warehouse
	@$(S)/postgres.sh psql

dbt-manifest: ## rebuild include/dbt/shopstream/target/manifest.json after changing the dbt project (commit it)
	@source $(S)/common.sh && .venv/bin/python -m shopstream.dbt.manifest

dbt: ## run dbt against the warehouse, e.g. make dbt ARGS="build --select silver"
	@source $(S)/common.sh && cd include/dbt/shopstream && $(CURDIR)/.venv/bin/dbt $(ARGS) \
	    --profiles-dir . --target-path $(CURDIR)/.local/dbt-target --log-path $(CURDIR)/.local/dbt-logs

bench: up ## run the benchmarks under bench/, write bench/results/latest.json
	@source $(S)/common.sh && .venv/bin/python bench/run.py

lint: ## ruff
	@$(S)/bootstrap.sh --dev && .venv/bin/ruff check .

clean: down ## stop services and delete .local/ (all local data)
	rm -rf .local

.PHONY: help demo test test-quick faults property venv lock lock-bi up down status airflow airflow-stop bi bi-stop psql dbt-manifest dbt bench lint clean
