"""DummyJSON source for ShopStream: the API client and its Airflow hook (the production side).

``from shopstream.dummyjson import DummyJSONClient`` needs no Airflow; the hook lives in
``shopstream.dummyjson.hook`` (imports Airflow). The local DummyJSON-compatible server and the catalogue
generator that tests and the offline demo run against are not part of the pipeline: they live in
``shopstream.dummyjson_stub``.
"""

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
    "DummyJSONClient",
    "DummyJSONError",
    "HTTPStatusError",
    "InconsistentDataError",
    "MalformedResponseError",
    "RateLimiter",
    "RetryBudgetExhausted",
]
