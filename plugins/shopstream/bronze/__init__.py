"""Bronze stage: Kafka topics -> bronze.raw_events (PostgreSQL), exactly once per (topic, partition, offset).

- ``loader``: the loader (plain Python: confluent-kafka + psycopg); ``BronzeLoader(...).run()`` / ``load()``.
- ``poison``: which messages go to the quarantine table and why.
- ``copyrows``: binary COPY encoding of the rows.
- ``planning``: start offsets, bounded-drain targets, partition groups for parallel tasks.
- ``cli``: ``python -m shopstream.bronze.cli`` (one load in a process; used by the fault tests).
- ``airflow_entry``: the thin layer the DAG calls (Airflow connections -> loader arguments).
"""
