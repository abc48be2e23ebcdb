"""Publisher logic with a scripted in-memory producer (the real broker is in tests/integration)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from shopstream.extract.messages import KafkaMessage
from shopstream.extract.publisher import PublishError, producer_settings, publish
from shopstream.extract.tasks import settings_from_params, topic_name


class _Msg:
    def __init__(self, topic, key, offset=0):
        self._topic, self._key, self._offset = topic, key, offset

    def topic(self):
        return self._topic

    def key(self):
        return self._key

    def partition(self):
        return 0

    def offset(self):
        return self._offset


class FakeProducer:
    """Records produce() calls; delivery outcome per key decided by `fail`/`lose`/`buffer_full`."""

    def __init__(self, fail=(), lose=(), buffer_full=0, reject=()):
        self.fail, self.lose, self.reject = set(fail), set(lose), set(reject)
        self.buffer_full = buffer_full
        self.pending = []
        self.produced = []
        self.polls = 0
        self.delivered = 0

    def produce(self, topic, value=None, key=None, timestamp=None, headers=None, on_delivery=None):
        if self.buffer_full:
            self.buffer_full -= 1
            raise BufferError("Local: Queue full")
        if key in self.reject:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.produced.append((topic, key, value, timestamp, headers))
        self.pending.append((topic, key, on_delivery))

    def _serve(self):
        keep = []
        for topic, key, cb in self.pending:
            if key in self.lose:
                keep.append((topic, key, cb))
                continue
            err = KafkaError(KafkaError._MSG_TIMED_OUT) if key in self.fail else None
            self.delivered += err is None
            cb(err, _Msg(topic, key, self.delivered - 1))
        self.pending = keep

    def poll(self, timeout=0):
        self.polls += 1
        self._serve()
        return 0

    def flush(self, timeout=None):
        self._serve()
        return len(self.pending)


def msgs(n, topic="t"):
    return [KafkaMessage(topic, f"k{i}".encode(), b"{}", 1_000 + i, (("h", b"v"),)) for i in range(n)]


def test_all_delivered():
    p = FakeProducer()
    result = publish(msgs(2500), {"bootstrap.servers": "x"}, producer=p)
    assert result.published == 2500 and result.per_topic == {"t": 2500}
    assert result.offsets == {"t": {0: [0, 2499]}}  # recorded in ops.extract_published
    topic, key, value, ts, headers = p.produced[7]
    assert (topic, key, value, ts, headers) == ("t", b"k7", b"{}", 1007, [("h", b"v")])


def test_a_failed_delivery_report_raises_with_count_and_first_error():
    p = FakeProducer(fail={b"k3", b"k9"})
    with pytest.raises(PublishError) as info:
        publish(msgs(10), {"bootstrap.servers": "x"}, producer=p)
    assert info.value.failed == 2 and info.value.undelivered == 0
    assert "2 of 10 messages failed" in str(info.value) and "k3" in str(info.value)


def test_messages_left_undelivered_by_flush_raise():
    p = FakeProducer(lose={b"k1"})
    with pytest.raises(PublishError) as info:
        publish(msgs(5), {"bootstrap.servers": "x"}, producer=p, flush_timeout=1)
    assert info.value.undelivered == 1 and info.value.failed == 0
    assert "1 were not delivered" in str(info.value)


def test_produce_rejection_counts_as_failure():
    p = FakeProducer(reject={b"k2"})
    with pytest.raises(PublishError) as info:
        publish(msgs(4), {"bootstrap.servers": "x"}, producer=p)
    assert info.value.failed == 1 and "k2" in info.value.first_error


def test_full_local_queue_is_retried_not_lost():
    p = FakeProducer(buffer_full=3)
    assert publish(msgs(4), {"bootstrap.servers": "x"}, producer=p).published == 4
    assert p.polls >= 3 and [k for _, k, *_ in p.produced] == [f"k{i}".encode() for i in range(4)]


def test_producer_settings_enforce_guarantees_and_drop_consumer_keys():
    cfg = producer_settings({"bootstrap.servers": "b:1", "acks": "1", "enable.idempotence": "false",
                             "group.id": "g", "enable.auto.commit": "false", "linger.ms": 5})
    assert cfg["acks"] == "all" and cfg["enable.idempotence"] is True
    assert "group.id" not in cfg and "enable.auto.commit" not in cfg
    assert cfg["linger.ms"] == 5 and cfg["bootstrap.servers"] == "b:1"
    with pytest.raises(ValueError, match="bootstrap.servers"):
        producer_settings({})


def test_topic_name_override_and_params():
    assert topic_name("orders", {}) == "orders"
    assert topic_name("orders", {"SHOPSTREAM_TOPIC_ORDERS": "orders-x"}) == "orders-x"
    with pytest.raises(ValueError):
        topic_name("nope", {})
    s = settings_from_params({"seed": "s", "order_rate": "0.5", "events_per_hour": 7})
    assert (s.seed, s.order_rate, s.events_per_hour) == ("s", 0.5, 7)
    assert settings_from_params(None) == settings_from_params({})
