"""The Kafka topics of the contract (docs/contracts.md) and the one rule that renames them.

Each base topic (`customers`, `products`, `orders`, `events`) is published to, loaded from and reconciled under
`$SHOPSTREAM_TOPIC_<NAME>` when that variable is set (tests and benchmarks use private topics this way), else
under its own name. Read when a task runs, never at DAG parse time. Import-free: the configuration checks
(shopstream.config) and the DAG files use it without pulling in Airflow or Kafka clients.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

TOPICS = ("customers", "products", "orders", "events")
ENV_PREFIX = "SHOPSTREAM_TOPIC_"


def env_var(base_topic: str) -> str:
    """The variable that renames `base_topic` (e.g. SHOPSTREAM_TOPIC_ORDERS)."""
    return ENV_PREFIX + base_topic.upper()


def check_base_topic(base_topic: str) -> None:
    """ValueError naming the four topics unless `base_topic` is one of them."""
    if base_topic not in TOPICS:
        raise ValueError(f"unknown topic {base_topic!r}; expected one of {TOPICS}")


def topic_name(base_topic: str, environ: Mapping[str, str] | None = None) -> str:
    """The Kafka topic for `base_topic`: `$SHOPSTREAM_TOPIC_<BASE>` when set, else the base name."""
    check_base_topic(base_topic)
    env = os.environ if environ is None else environ
    return env.get(env_var(base_topic)) or base_topic


def topic_names(bases: Iterable[str] = TOPICS, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{base topic: Kafka topic} for `bases` (default: all four)."""
    return {base: topic_name(base, environ) for base in bases}
