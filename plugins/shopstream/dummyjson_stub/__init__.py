"""Stand-in for the DummyJSON API for tests and the offline demo: a local DummyJSON-compatible server with
fault injection, and the catalogues it serves (DummyJSON's snapshot files or a seeded generated catalogue).

Not part of the production pipeline: no DAG or task imports this package. The pipeline reaches the server
only over HTTP, through the ``dummyjson_api`` connection, exactly as it reaches https://dummyjson.com; tests,
benchmarks, ``scripts/dummyjson.sh`` and the compose service ``dummyjson`` start it.

Why the name: ``dummyjson_stub`` sits next to ``shopstream.dummyjson`` (the production client and hook)
in any listing, and the suffix says it stands in for the real service. It is not called ``server`` or
``local_dummyjson`` because those read like a part of the pipeline that runs in production.

Modules, one job each:

* ``server``: :class:`~shopstream.dummyjson_stub.server.DummyJSONServer`, the embeddable server (settings,
  statistics, start/stop in a thread) and ``resolve_catalog`` (which catalogue to serve);
* ``routes``: the read routes of /users, /products, /carts as plain functions of path and query;
* ``http_handler``: HTTP around the routes (gzip, ETags, redirects, the admin endpoints ``/__*``);
* ``rate_limit``: DummyJSON's fixed-window rate limit;
* ``fault_rules``: the fault-injection rules (named apart from :mod:`shopstream.faults`, the pipeline's
  own fault checkpoints);
* ``catalog``: the snapshot loader and the seeded generator;
* ``__main__``: ``python -m shopstream.dummyjson_stub --port 58080 [--data DIR | --generate SIZES]``.
"""
