"""Extract stage: DummyJSON snapshot + logical hour -> Kafka topics customers, products, orders, events.

Modules: `pii` (what leaves the extractor), `derive` (orders and clickstream events, pure), `messages`
(Kafka messages per docs/contracts.md, pure), `publisher` (confluent-kafka, every delivery checked),
`tasks` (fetch -> build -> publish for one topic; the Airflow glue the DAG calls).
"""
