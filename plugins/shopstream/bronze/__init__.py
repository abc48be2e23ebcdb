"""Bronze stage: Kafka topics -> bronze.raw_events (PostgreSQL), exactly once per (topic, partition, offset).

- ``loader``: the loader loop (plain Python: confluent-kafka + psycopg): one transaction per batch, the safety-net
  and reconnect paths; ``BronzeLoader(...).run()`` / ``load()``, and ``plan_groups()`` for the parallel tasks.
- ``batches``: batch assembly (``BatchAssembler``): Kafka messages -> a batch's rows, its quarantine rows and the
  COPY stream; where each partition's position ends and when it is drained.
- ``consumer``: the Kafka side: consumer configuration, watermarks, the partitions of topics.
- ``offsets``: ``OffsetStore``, every statement on bronze.consumer_offsets (read, lock, compare-and-set).
- ``schema``: apply include/sql/bronze, or verify it and the loader's grants where the owner role applied it.
- ``results``: per-topic counts, a load's result, the merge over loads, and their one log format.
- ``poison``: which messages go to the quarantine table and why.
- ``copyrows``: binary COPY encoding of the rows.
- ``planning``: start offsets, bounded-drain targets, partition groups for parallel tasks (pure).
- ``cli``: ``python -m shopstream.bronze.cli`` (one load in a process; used by the fault tests).
- ``airflow_entry``: the thin layer the DAG calls (Airflow connections -> loader arguments).
"""
