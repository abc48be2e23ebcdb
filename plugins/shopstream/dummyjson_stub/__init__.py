"""Stand-in for the DummyJSON API for tests and the offline demo: a local DummyJSON-compatible server with
fault injection, and the catalogues it serves (DummyJSON's snapshot files or a seeded generated catalogue).

Not part of the production pipeline: no DAG or task imports this package. The pipeline reaches the server
only over HTTP, through the ``dummyjson_api`` connection, exactly as it reaches https://dummyjson.com; tests,
benchmarks, ``scripts/dummyjson.sh`` and the compose service ``dummyjson`` start it.

Why the name: ``dummyjson_stub`` sits next to ``shopstream.dummyjson`` (the production client and hook)
in any listing, and the suffix says it stands in for the real service. It is not called ``server`` or
``local_dummyjson`` because those read like a part of the pipeline that runs in production.

Modules: ``server`` (the embeddable server, ``python -m shopstream.dummyjson_stub.server``), ``catalog``
(snapshot loader and the seeded generator).
"""
