"""shopstream_dbt_docs: the dbt docs (lineage graph, models, columns) in the Airflow UI, off the hourly path.

Runs when gold was rebuilt *and* reconciled (`shopstream.gold & shopstream.reconciled`): the reconciled asset is
emitted by the dbt DAG's last task, so this DAG starts after an hour's pipeline has ended and never competes with
it. One task, `generate_docs`: Cosmos' `dbt docs generate` (catalog included) into the folder that Cosmos' plugin
serves under *Browse* -> *dbt Docs* (`[cosmos] dbt_docs_projects`, set by scripts/common.sh and
docker-compose.yaml). When the docs already describe the current dbt project, the task returns at once
(shopstream.dbt.docs); the `force` param regenerates them anyway.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag
from shopstream import dag_defaults
from shopstream.assets import GOLD, RECONCILED
from shopstream.dbt.dag_tasks import docs_task


@dag(
    dag_id="shopstream_dbt_docs",
    description="dbt docs generate (catalog included) -> the dbt Docs view of the Airflow UI",
    schedule=(GOLD & RECONCILED),
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**dag_defaults.default_args(retries=2, retry_delay=timedelta(minutes=1)),
                  "execution_timeout": timedelta(minutes=15)},
    tags=["shopstream", "dbt", "docs"],
    params={"force": Param(False, type="boolean", description="Regenerate the docs even when they are current")},
    doc_md=__doc__,
)
def shopstream_dbt_docs():
    docs_task("shopstream_dbt_docs", force="{{ params.force }}")


shopstream_dbt_docs()
