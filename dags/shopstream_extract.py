"""shopstream_extract: every hour, DummyJSON -> Kafka topics customers, products, orders, events.

Thin wiring only; the logic lives in `shopstream.extract` (plugins/). The run's data interval is the hour
it processes: the run that starts at 14:00 UTC processes [13:00, 14:00), and a backfill of hour H has
logical date H. One task, `publish_hour`: it fetches DummyJSON once and publishes the four topics, updating each
topic's Asset (extra: `logical_hour`, `topic`, `messages`) for the bronze DAG. One task rather than one per
topic: half the API requests and a quarter of the task starts per hour, which is what a backfill of weeks costs
(bench/README.md); a retry publishes the hour again, the same messages, which the pipeline absorbs like any re-run.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from shopstream import dag_defaults
from shopstream.assets import KAFKA_TOPIC_ASSETS
from shopstream.extract.derive import DEFAULT_EVENTS_PER_HOUR, DEFAULT_ORDER_RATE, DEFAULT_SEED

default_args = {
    **dag_defaults.default_args(retries=3, retry_delay=timedelta(seconds=30)),
    "execution_timeout": timedelta(minutes=20),
}


@dag(
    dag_id="shopstream_extract",
    description="DummyJSON snapshot + derived orders/events -> Kafka, one logical hour per run",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=dag_defaults.START_DATE,  # backfills can reach back to here
    catchup=False,
    max_active_runs=2,
    default_args=default_args,
    tags=["shopstream", "extract", "kafka"],
    params={
        "seed": Param(DEFAULT_SEED, type="string", description="Seed of the derived orders/events"),
        "order_rate": Param(DEFAULT_ORDER_RATE, type="number", minimum=0, maximum=1,
                            description="Probability that a cart becomes an order in a given hour"),
        "events_per_hour": Param(DEFAULT_EVENTS_PER_HOUR, type="integer", minimum=0,
                                 description="Clickstream events per hour"),
    },
    doc_md=__doc__,
)
def shopstream_extract():
    @task(outlets=list(KAFKA_TOPIC_ASSETS.values()))
    def publish_hour(data_interval_start=None, logical_date=None, params=None, outlet_events=None, run_id=None):
        from shopstream.extract.tasks import run_extract_hour_task

        return run_extract_hour_task(data_interval_start=data_interval_start, logical_date=logical_date,
                                     params=params, outlet_events=outlet_events, run_id=run_id)

    publish_hour()


shopstream_extract()
