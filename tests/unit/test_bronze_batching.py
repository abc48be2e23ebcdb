"""Batch assembly of the bronze loader (shopstream.bronze.batches) against a scripted consumer (no Kafka, no
PostgreSQL).

Covers what decides correctness before any SQL runs: which messages enter a batch, where each partition's
position ends, when a partition counts as drained (its high watermark at start), and that poison goes to the
quarantine list without stopping the batch.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from shopstream.bronze import poison
from shopstream.bronze.batches import Batch, BatchAssembler, PartitionState
from shopstream.bronze.consumer import build_consumer_config, watermarks
from shopstream.bronze.copyrows import SIGNATURE, TRAILER
from shopstream.bronze.loader import LoaderSettings
from shopstream.bronze.planning import plan_partition
from shopstream.bronze.results import merge_results

from tests.support.binary_copy import decode_rows

TS = 1_748_782_800_000


class Msg:
    def __init__(self, topic, partition, offset, key=b"k", value=b'{"a":1}', ts=TS, ts_type=1, error=None):
        self._t, self._p, self._o, self._k, self._v, self._ts, self._err = (
            topic, partition, offset, key, value, (ts_type, ts), error)

    def error(self):
        return self._err

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def key(self):
        return self._k

    def value(self):
        return self._v

    def timestamp(self):
        return self._ts

    def headers(self):
        return None


def eof(topic, partition, offset):
    return Msg(topic, partition, offset, error=KafkaError(KafkaError._PARTITION_EOF))


class ScriptedConsumer:
    """consume() returns the scripted lists one call at a time, then nothing."""

    def __init__(self, script):
        self.script = list(script)
        self.paused = []
        self.assigned = None

    def consume(self, num_messages, timeout):
        if self.script:
            return self.script.pop(0)
        time.sleep(min(timeout, 0.01))
        return []

    def pause(self, tps):
        self.paused.extend((tp.topic, tp.partition) for tp in tps)

    def resume(self, tps):
        for tp in tps:
            if (tp.topic, tp.partition) in self.paused:
                self.paused.remove((tp.topic, tp.partition))

    def assign(self, tps):
        self.assigned = [(tp.topic, tp.partition, tp.offset) for tp in tps]


def make_assembler(script, partitions, settings=None):
    """partitions: {(topic, p): (stored, low, high)}"""
    assembler = BatchAssembler(ScriptedConsumer(script), settings or LoaderSettings())
    for (topic, p), (stored, low, high) in partitions.items():
        assembler.add(PartitionState.at(plan_partition(topic, p, stored, low, high), stored))
    return assembler


def fill(assembler, limit=1000, seconds=0.5):
    batch = Batch()
    sent = []
    assembler.fill(batch, limit, time.monotonic() + seconds, sent.append)
    return batch, decode_rows(SIGNATURE + b"".join(sent) + TRAILER)


def test_drains_to_high_watermark_and_stops():
    msgs = [Msg("t", 0, o, key=str(o).encode()) for o in range(5)]
    assembler = make_assembler([msgs], {("t", 0): (0, 0, 5)})
    batch, copied = fill(assembler)
    assert [r[4] for r in copied] == [0, 1, 2, 3, 4]
    assert [r[1] for r in copied] == ["0", "1", "2", "3", "4"]
    assert batch.start == {("t", 0): 0} and batch.end == {("t", 0): 5}
    assert assembler.parts[("t", 0)].done and ("t", 0) in assembler.consumer.paused


def test_messages_beyond_the_start_watermark_are_left_for_the_next_run():
    msgs = [Msg("t", 0, o) for o in range(3, 9)]
    assembler = make_assembler([msgs], {("t", 0): (3, 0, 6)})
    batch, copied = fill(assembler)
    assert [r[4] for r in copied] == [3, 4, 5]
    assert batch.end == {("t", 0): 6}


def test_batch_limit_leaves_the_rest_pending_in_order():
    msgs = [Msg("t", p, o) for o in range(10) for p in (0, 1)]
    assembler = make_assembler([msgs], {("t", 0): (0, 0, 10), ("t", 1): (0, 0, 10)})
    b1, c1 = fill(assembler, limit=7)
    b2, c2 = fill(assembler, limit=100)
    assert len(c1) == 7 and len(c2) == 13
    assert sorted((r[3], r[4]) for r in c1 + c2) == sorted((p, o) for o in range(10) for p in (0, 1))
    assert b1.end[("t", 0)] == 4 and b1.end[("t", 1)] == 3
    assert b2.start == {("t", 0): 0, ("t", 1): 0}  # db offsets: the first batch was not committed here
    assert b2.end == {("t", 0): 10, ("t", 1): 10}


def test_eof_at_target_finishes_a_partition_with_gaps():
    # Offsets 2 and 5 never arrive (e.g. transaction markers); the end of the log is 6 = the target.
    msgs = [Msg("t", 0, o) for o in (0, 1, 3, 4)] + [eof("t", 0, 6)]
    assembler = make_assembler([msgs], {("t", 0): (0, 0, 6)})
    batch, copied = fill(assembler)
    assert [r[4] for r in copied] == [0, 1, 3, 4]
    assert batch.end == {("t", 0): 6}
    assert assembler.parts[("t", 0)].done


def test_eof_below_target_does_not_finish():
    assembler = make_assembler([[Msg("t", 0, 0), eof("t", 0, 1)]], {("t", 0): (0, 0, 3)})
    batch, _ = fill(assembler, seconds=0.2)
    assert batch.end == {("t", 0): 1} and not assembler.parts[("t", 0)].done


def test_already_handled_offsets_are_skipped():
    msgs = [Msg("t", 0, o) for o in (3, 4, 5, 4, 5, 6)]
    assembler = make_assembler([msgs], {("t", 0): (4, 0, 7)})
    batch, copied = fill(assembler)
    assert [r[4] for r in copied] == [4, 5, 6]


def test_unknown_partitions_are_ignored():
    assembler = make_assembler([[Msg("other", 0, 0), Msg("t", 0, 0)]], {("t", 0): (0, 0, 1)})
    _, copied = fill(assembler)
    assert [(r[0], r[4]) for r in copied] == [("t", 0)]


def test_poison_goes_to_quarantine_without_stopping_the_batch():
    msgs = [
        Msg("t", 0, 0),
        Msg("t", 0, 1, value=None),
        Msg("t", 0, 2, value=b"[1]"),
        Msg("t", 0, 3, value=b'{"a":"\xff"}'),
        Msg("t", 0, 4, key=None),
        Msg("t", 0, 5, value=b'{"a":"\\u0000"}'),
        Msg("t", 0, 6, value=b'{"a":"' + b"x" * 100 + b'"}'),
        Msg("t", 0, 7, value=b"not json"),
        Msg("t", 0, 8),
    ]
    assembler = make_assembler([msgs], {("t", 0): (0, 0, 9)}, LoaderSettings(max_value_bytes=64))
    batch, copied = fill(assembler)
    assert [r[4] for r in copied] == [0, 8]
    reasons = {q[2]: q[9] for q in batch.quarantine}
    assert reasons == {1: poison.TOMBSTONE, 2: poison.NOT_OBJECT, 3: poison.INVALID_UTF8, 4: poison.MISSING_KEY,
                       5: poison.JSONB_REJECTED, 6: poison.OVERSIZE, 7: poison.INVALID_JSON}
    q3 = next(q for q in batch.quarantine if q[2] == 3)
    assert q3[6] == b"k" and q3[7] == b'{"a":"\xff"}' and q3[8] == len(b'{"a":"\xff"}')  # raw bytes kept
    assert batch.end == {("t", 0): 9}
    assert batch.size == 9


def test_repeated_json_key_is_quarantined_with_its_raw_bytes_not_copied():
    repeated = b'{"id":1,"email":"a@x","email":"b@x"}'  # jsonb would keep only b@x
    msgs = [Msg("t", 0, 0), Msg("t", 0, 1, value=repeated), Msg("t", 0, 2)]
    batch, copied = fill(make_assembler([msgs], {("t", 0): (0, 0, 3)}))
    assert [r[4] for r in copied] == [0, 2]
    [q] = batch.quarantine
    assert (q[2], q[7], q[9]) == (1, repeated, f"{poison.DUPLICATE_JSON_KEY}:email")
    assert batch.q_by_topic == {("t", f"{poison.DUPLICATE_JSON_KEY}:email"): 1}


def test_deadline_ends_an_idle_batch_and_stall_is_flagged():
    assembler = make_assembler([], {("t", 0): (0, 0, 5)}, LoaderSettings(stall_seconds=0.05))
    started = time.monotonic()
    batch, copied = fill(assembler, seconds=0.3)
    assert time.monotonic() - started < 1.0
    assert copied == [] and batch.end == {}
    assert assembler.stalled


def test_reopened_partition_is_reassigned_and_resumed():
    # A partition paused at its target must fetch again when a rollback/resync moves it back: librdkafka keeps
    # a pause across assign(), so the loader has to resume it explicitly.
    assembler = make_assembler([[Msg("t", 0, o) for o in range(3)]], {("t", 0): (0, 0, 3), ("t", 1): (0, 0, 2)})
    fill(assembler)
    assert assembler.parts[("t", 0)].done and ("t", 0) in assembler.consumer.paused
    assembler.seek({("t", 0): 1, ("t", 1): 0})  # e.g. the batch did not commit: back to the stored offsets
    assert assembler.consumer.assigned == [("t", 0, 1), ("t", 1, 0)]
    assert assembler.consumer.paused == []


def test_consumer_config_forces_manual_offsets():
    cfg = build_consumer_config({"bootstrap.servers": "b:1", "enable.auto.commit": True, "group.id": "x",
                                 "fetch.max.bytes": 1234}, "g")
    assert cfg["group.id"] == "g"
    assert cfg["enable.auto.commit"] is False and cfg["enable.auto.offset.store"] is False
    assert cfg["enable.partition.eof"] is True and cfg["auto.offset.reset"] == "earliest"
    assert cfg["fetch.max.bytes"] == 1234  # tuning from the connection is kept


def test_merge_results():
    def r(topic, **c):
        base = {"read": 0, "inserted": 0, "already_present": 0, "quarantined": 0, "remaining_lag": 0,
                "quarantined_by_reason": {}}
        return {"topics": {topic: base | c}, "batches": 1, "safety_net_batches": 0}

    merged = merge_results([
        r("a", read=10, inserted=9, quarantined=1, quarantined_by_reason={"tombstone": 1}),
        r("a", read=5, inserted=2, already_present=3, remaining_lag=4),
        r("b", read=1, inserted=1),
    ])
    assert merged["loads"] == 3 and merged["batches"] == 3
    assert merged["topics"]["a"] == {"read": 15, "inserted": 11, "already_present": 3, "quarantined": 1,
                                     "remaining_lag": 4, "quarantined_by_reason": {"tombstone": 1}}
    assert merged["totals"] == {"read": 16, "inserted": 12, "already_present": 3, "quarantined": 1,
                                "remaining_lag": 4}


def test_watermarks_retry_transient_errors_then_give_up():
    class Flaky:
        def __init__(self, errors):
            self.errors = list(errors)
            self.calls = 0

        def get_watermark_offsets(self, tp, timeout, cached):
            self.calls += 1
            if self.errors:
                raise KafkaException(KafkaError(self.errors.pop(0)))
            return (0, 42)

    flaky = Flaky([KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError._UNKNOWN_PARTITION])
    assert watermarks(flaky, "t", 0, timeout=5) == (0, 42) and flaky.calls == 3
    with pytest.raises(KafkaException):  # not transient: raised at once
        watermarks(Flaky([KafkaError.TOPIC_AUTHORIZATION_FAILED]), "t", 0, timeout=5)
    started = time.monotonic()
    with pytest.raises(KafkaException):  # transient but never ending: raised after the timeout
        watermarks(Flaky([KafkaError.NOT_LEADER_FOR_PARTITION] * 1000), "t", 0, timeout=0.5)
    assert time.monotonic() - started < 2
