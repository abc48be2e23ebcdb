"""shopstream.topics: the contract's topics and the one renaming rule every stage follows."""

from __future__ import annotations

import pytest
from shopstream import topics


def test_a_variable_renames_its_topic_only():
    env = {"SHOPSTREAM_TOPIC_ORDERS": "orders-test1", "SHOPSTREAM_TOPIC_EVENTS": ""}
    assert topics.topic_names(environ=env) == {"customers": "customers", "products": "products",
                                               "orders": "orders-test1", "events": "events"}
    assert topics.env_var("orders") == "SHOPSTREAM_TOPIC_ORDERS"


def test_an_unknown_base_topic_is_an_error():
    with pytest.raises(ValueError, match="unknown topic 'refunds'"):
        topics.topic_name("refunds", {})


def test_every_stage_uses_the_same_rule(monkeypatch):
    from shopstream import assets, config
    from shopstream.bronze import airflow_entry
    from shopstream.extract import messages, tasks
    from shopstream.reconcile import published, windows

    assert assets.TOPICS is config.TOPICS is messages.TOPICS is published.TOPICS is windows.TOPICS is topics.TOPICS
    monkeypatch.setenv("SHOPSTREAM_TOPIC_PRODUCTS", "products-x")
    assert tasks.topic_name("products") == "products-x"
    assert airflow_entry.topics() == ["customers", "products-x", "orders", "events"]
