"""shopstream.faults: a checkpoint fails exactly N times, counted in the spec file, across processes."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest
from shopstream import faults


@pytest.fixture
def spec_file(tmp_path, monkeypatch):
    path = tmp_path / "faults.json"
    monkeypatch.setenv(faults.FILE_ENV, str(path))
    return path


def test_no_configuration_never_fails(monkeypatch):
    monkeypatch.delenv(faults.FILE_ENV, raising=False)
    for _ in range(3):
        faults.checkpoint("extract.publish:orders")


def test_missing_or_empty_file_never_fails(spec_file):
    faults.checkpoint("bronze.load")
    spec_file.write_text("")
    faults.checkpoint("bronze.load")


def test_fails_exactly_n_times_and_counts_in_the_file(spec_file):
    faults.write_spec(spec_file, {"extract.publish:orders": {"fail_times": 2}})
    for n in (1, 2):
        with pytest.raises(faults.InjectedFault) as info:
            faults.checkpoint("extract.publish:orders")
        assert info.value.occurrence == n and info.value.limit == 2
    faults.checkpoint("extract.publish:orders")  # third time passes
    spec = json.loads(spec_file.read_text())
    assert spec["extract.publish:orders"]["failed"] == 2
    assert spec["extract.publish:orders"]["fired_at"] == ["extract.publish:orders"] * 2


def test_other_checkpoints_are_untouched(spec_file):
    faults.write_spec(spec_file, {"extract.publish:orders": {"fail_times": 1}})
    faults.checkpoint("extract.publish:events")
    faults.checkpoint("bronze.load")
    assert "failed" not in faults.read_spec(spec_file)["extract.publish:orders"]


def test_patterns_disabled_entries_and_exact_match_precedence():
    spec = {"extract.publish:*": {"fail_times": 5}, "extract.publish:orders": {"fail_times": 1, "enabled": False}}
    assert faults.match_entry(spec, "extract.publish:orders") == "extract.publish:*"
    assert faults.match_entry(spec, "bronze.load") is None
    spec["extract.publish:orders"]["enabled"] = True
    assert faults.match_entry(spec, "extract.publish:orders") == "extract.publish:orders"


def test_prepare_runs_before_raising_only_when_firing(spec_file):
    calls = []
    faults.checkpoint("bronze.load", prepare=lambda: calls.append("flush"))
    assert calls == []
    faults.write_spec(spec_file, {"bronze.load": {"fail_times": 1}})
    with pytest.raises(faults.InjectedFault):
        faults.checkpoint("bronze.load", prepare=lambda: calls.append("flush"))
    assert calls == ["flush"]


def test_malformed_spec_is_an_explicit_error(spec_file):
    spec_file.write_text("{not json")
    with pytest.raises(faults.FaultSpecError):
        faults.checkpoint("bronze.load")
    spec_file.write_text(json.dumps({"bronze.load": 3}))
    with pytest.raises(faults.FaultSpecError):
        faults.checkpoint("bronze.load")
    spec_file.write_text(json.dumps({"bronze.load": {"fail_times": "x"}}))
    with pytest.raises(faults.FaultSpecError):
        faults.checkpoint("bronze.load")


def _hit(path: str, results) -> None:
    os.environ[faults.FILE_ENV] = path
    for _ in range(5):
        try:
            faults.checkpoint("bronze.load")
            results.put("ok")
        except faults.InjectedFault:
            results.put("fault")


def test_concurrent_processes_fail_exactly_n_times_in_total(spec_file):
    faults.write_spec(spec_file, {"bronze.load": {"fail_times": 7}})
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_hit, args=(str(spec_file), results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    outcomes = [results.get(timeout=5) for _ in range(20)]
    assert outcomes.count("fault") == 7
    assert faults.read_spec(spec_file)["bronze.load"]["failed"] == 7


def test_variable_is_not_consulted_outside_a_task(monkeypatch):
    monkeypatch.delenv(faults.FILE_ENV, raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_SHOPSTREAM_FAULTS", json.dumps({"bronze.load": {"fail_times": 1}}))
    faults.checkpoint("bronze.load")  # not inside an Airflow task: no Variable lookup, no fault


def test_extract_publish_checkpoint_fails_after_half_was_delivered(spec_file):
    """The hook in shopstream.extract.publisher: half of the messages are flushed, then the fault fires."""
    from shopstream.extract.messages import KafkaMessage
    from shopstream.extract.publisher import publish

    class Producer:
        def __init__(self):
            self.pending, self.delivered = [], []

        def produce(self, topic, value=None, key=None, timestamp=None, headers=None, on_delivery=None):
            self.pending.append((key, on_delivery))

        def poll(self, timeout=0):
            return 0

        def flush(self, timeout=None):
            for key, cb in self.pending:
                self.delivered.append(key)
                cb(None, None)
            self.pending = []
            return 0

    msgs = [KafkaMessage("orders", str(i).encode(), b"{}", 0, ()) for i in range(9)]
    faults.write_spec(spec_file, {"extract.publish:orders": {"fail_times": 1}})
    producer = Producer()
    with pytest.raises(faults.InjectedFault):
        publish(msgs, {}, producer=producer, fault_point="extract.publish:orders")
    assert producer.delivered == [str(i).encode() for i in range(5)]  # the first half, flushed
    producer = Producer()
    result = publish(msgs, {}, producer=producer, fault_point="extract.publish:orders")  # fault used up
    assert result.published == 9 and len(producer.delivered) == 9
