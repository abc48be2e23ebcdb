"""DummyJSON source for ShopStream: API client, Airflow hook, local compatible server, catalogue generator.

``from shopstream.dummyjson import DummyJSONClient`` needs no Airflow; the hook lives in
``shopstream.dummyjson.hook`` (imports Airflow), the server in ``shopstream.dummyjson.server``.
"""

from shopstream.dummyjson.catalog import Catalog, generate_catalog, load_snapshot, snapshot_dir
from shopstream.dummyjson.client import (
    RESOURCES,
    DummyJSONClient,
    DummyJSONError,
    HTTPStatusError,
    InconsistentDataError,
    MalformedResponseError,
    RateLimiter,
    RetryBudgetExhausted,
)

__all__ = [
    "RESOURCES",
    "Catalog",
    "DummyJSONClient",
    "DummyJSONError",
    "HTTPStatusError",
    "InconsistentDataError",
    "MalformedResponseError",
    "RateLimiter",
    "RetryBudgetExhausted",
    "generate_catalog",
    "load_snapshot",
    "snapshot_dir",
]
