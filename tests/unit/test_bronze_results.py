"""shopstream.bronze.results: one load and the merge of loads are logged in the same per-topic format."""

from __future__ import annotations

import logging

from shopstream.bronze.results import LoadResult, TopicCounts, log_load, log_merged, merge_results


def test_a_load_and_its_merge_log_the_same_topic_lines(caplog):
    result = LoadResult(
        topics={"orders": TopicCounts(read=10, inserted=8, already_present=1, quarantined=1,
                                      quarantined_by_reason={"tombstone": 1}),
                "events": TopicCounts(read=3, inserted=3, remaining_lag=7)},
        partitions=[], consumer_group="g", stopped_by="drained", seconds=1.25, batches=2)
    with caplog.at_level(logging.INFO, logger="shopstream.bronze"):
        log_load(result)
        load_lines = [r.getMessage() for r in caplog.records]
        caplog.clear()
        log_merged(merge_results([result.as_dict()]))
        merged_lines = [r.getMessage() for r in caplog.records]
    assert load_lines[0] == "bronze load drained in 1.2 s: 2 batches, 0 via safety net, 0 offset conflicts"
    assert merged_lines[0] == ("bronze totals over 1 loads: read 13, inserted 11, already present 1, "
                               "quarantined 1, remaining lag 7")
    assert load_lines[1:] == merged_lines[1:] and len(load_lines) == 3
    assert load_lines[1].split() == ["events", "read", "3", "inserted", "3", "already", "present", "0",
                                     "quarantined", "0", "remaining", "lag", "7"]
    assert load_lines[2].endswith("  {'tombstone': 1}")


def test_totals_add_up_over_topics():
    result = LoadResult(topics={"a": TopicCounts(read=2, inserted=2), "b": TopicCounts(read=5, quarantined=5)},
                        partitions=[], consumer_group="g", stopped_by="drained", seconds=0.0)
    assert result.totals() == {"read": 7, "inserted": 2, "already_present": 0, "quarantined": 5, "remaining_lag": 0}
    assert result.as_dict()["totals"] == result.totals()
