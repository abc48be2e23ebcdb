"""Fixtures of the unit tests of the DummyJSON client, the DummyJSON stub and its catalogue: DummyJSON's snapshot
(`SHOPSTREAM_DUMMYJSON_DATA`), and the stub serving it on a free port. Per test module, as each module had them."""

from __future__ import annotations

from pathlib import Path

import pytest
from shopstream.dummyjson_stub.catalog import has_snapshot, load_snapshot, snapshot_dir
from shopstream.dummyjson_stub.server import DummyJSONServer


@pytest.fixture(scope="module")
def snapshot_path() -> Path:
    """The folder of DummyJSON's users.json, products.json and carts.json; missing, the test fails (never skips)."""
    path = snapshot_dir()
    if not has_snapshot(path):
        pytest.fail(f"DummyJSON snapshot not found at {path}; set SHOPSTREAM_DUMMYJSON_DATA")
    return path


@pytest.fixture(scope="module")
def snapshot(snapshot_path):
    return load_snapshot(snapshot_path)


@pytest.fixture(scope="module")
def server(snapshot):
    """The DummyJSON stub serving the snapshot on 127.0.0.1 (a free port), no rate limit, no faults."""
    srv = DummyJSONServer(snapshot, rate_limit=None)
    with srv:
        yield srv
