"""Poison classification (shopstream.bronze.poison): every reason, and the valid edge cases jsonb accepts."""

from __future__ import annotations

import pytest
from shopstream.bronze import poison

GOOD_KEY = b"17"
TS = (1, 1_748_782_800_000)  # CreateTime, 2025-06-01T13:00Z


@pytest.fixture(params=["msgspec", "stdlib"])
def parser(request, monkeypatch):
    """Run every case through the fast path (msgspec) and through the stdlib-only fallback."""
    if request.param == "stdlib":
        monkeypatch.setattr(poison, "_fast_decode", None)
    return request.param


def reason(value, key=GOOD_KEY, ts=TS, max_bytes=poison.DEFAULT_MAX_VALUE_BYTES):
    r = poison.classify(key, value, ts[0], ts[1], max_bytes)
    return None if r is None else r[0]


@pytest.mark.parametrize("value", [
    b'{"a":1}',
    b'  {"a": [1, 2, {"b": null}], "c": "d"}\n',
    b'{"price":"9.99","n":1e400}',  # beyond double, but jsonb's numeric takes it
    b'{"big":123456789012345678901234567890}',
    '{"name":"Zoë 🛒"}'.encode(),
    b'{"emoji":"\\ud83d\\uded2"}',  # a valid surrogate pair escape
    b'{"text":"\\\\u0000"}',  # an escaped backslash followed by "u0000": plain text, fine for jsonb
    b'{"a":1,"a":2}',  # duplicate keys: jsonb keeps the last
    b"{}",
])
def test_storable(parser, value):
    assert poison.classify(GOOD_KEY, value, *TS) is None


@pytest.mark.parametrize("value,expected", [
    (None, poison.TOMBSTONE),
    (b'{"a":"\xff"}', poison.INVALID_UTF8),
    (b'{"a":"\xed\xa0\x80"}', poison.INVALID_UTF8),  # a UTF-8-encoded surrogate is not UTF-8
    (b"", poison.INVALID_JSON),
    (b'{"a":', poison.INVALID_JSON),
    (b'{"a":1} {"b":2}', poison.INVALID_JSON),
    (b'{"a":NaN}', poison.INVALID_JSON),
    (b'{"a":Infinity}', poison.INVALID_JSON),
    (b'{"a":"tab\there"}', poison.INVALID_JSON),  # raw control character inside a string
    (b"{'a':1}", poison.INVALID_JSON),
    (b"[1,2]", poison.NOT_OBJECT),
    (b'"text"', poison.NOT_OBJECT),
    (b"42", poison.NOT_OBJECT),
    (b"null", poison.NOT_OBJECT),
    (b"true", poison.NOT_OBJECT),
    (b'{"a":"x\\u0000y"}', poison.JSONB_REJECTED),
    (b'{"x\\u0000":1}', poison.JSONB_REJECTED),  # in a key
    (b'{"a":[{"b":"\\u0000"}]}', poison.JSONB_REJECTED),  # nested
    (b'{"a":"\\ud800"}', poison.JSONB_REJECTED),  # unpaired high surrogate
    (b'{"a":"\\udc00x"}', poison.JSONB_REJECTED),  # unpaired low surrogate
])
def test_value_reasons(parser, value, expected):
    got = poison.classify(GOOD_KEY, value, *TS)
    assert got is not None and got[0] == expected, got
    assert got[1]  # a human-readable detail


def test_deep_nesting_is_rejected_not_raised(parser):
    value = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert reason(value) == poison.INVALID_JSON


def test_oversize_is_configurable(parser):
    value = b'{"a":"' + b"x" * 1000 + b'"}'
    assert reason(value, max_bytes=len(value)) is None
    assert reason(value, max_bytes=len(value) - 1) == poison.OVERSIZE


@pytest.mark.parametrize("key,expected", [
    (None, poison.MISSING_KEY),
    (b"", poison.MISSING_KEY),
    (b"\xff\xfe", poison.INVALID_KEY),
    (b"a\x00b", poison.INVALID_KEY),
    (b"o-2026112713-0007", None),
    ("clé".encode(), None),
])
def test_key_reasons(key, expected):
    assert reason(b'{"a":1}', key=key) == expected


@pytest.mark.parametrize("ts,expected", [
    ((0, -1), poison.INVALID_TIMESTAMP),  # TIMESTAMP_NOT_AVAILABLE
    ((1, -5), poison.INVALID_TIMESTAMP),
    ((1, poison.MAX_TIMESTAMP_MS + 1), poison.INVALID_TIMESTAMP),
    ((1, 0), None),
    ((2, 1_748_782_800_000), None),  # LogAppendTime
    ((1, poison.MAX_TIMESTAMP_MS), None),
])
def test_timestamp_reasons(ts, expected):
    assert reason(b'{"a":1}', ts=ts) == expected


def test_value_reason_wins_over_key_and_timestamp():
    assert poison.classify(None, None, 0, -1)[0] == poison.TOMBSTONE
    assert poison.classify(None, b"[1]", 0, -1)[0] == poison.NOT_OBJECT
    assert poison.classify(None, b'{"a":1}', 0, -1)[0] == poison.MISSING_KEY


def test_fast_classifier_agrees_with_classify(parser):
    values = [None, b'{"a":1}', b"[1]", b'{"a":', b'{"a":"\xff"}', b'{"a":"\\u0000"}', b'{"a":"\\ud800"}',
              b'{"e":"\\ud83d\\uded2"}', b'{"a":1e400}', b'{"a":"' + b"x" * 300 + b'"}', b"{}", b" {} "]
    keys = [None, b"", b"k", "clé".encode(), b"\xff", b"a\x00"]
    stamps = [(1, 0), (0, -1), (1, -2), (2, 5), (1, poison.MAX_TIMESTAMP_MS + 1)]
    check = poison.make_classifier(200)
    for value in values:
        for key in keys:
            for ts in stamps:
                assert check(key, value, *ts) == poison.classify(key, value, *ts, 200), (key, value, ts)
