"""Poison classification (shopstream.bronze.poison): every reason, and the valid edge cases jsonb accepts."""

from __future__ import annotations

import json
import random
from collections import Counter

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
    (b'{"a":1,"a":2}', f"{poison.DUPLICATE_JSON_KEY}:a"),  # jsonb would keep only the last
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


# ---------------------------------------------------------------------------------- repeated keys

@pytest.mark.parametrize("value,path", [
    (b'{"id":1,"email":"a@x","email":"b@x"}', "email"),
    (b'{"a":1,"\\u0061":2}', "a"),  # an escaped spelling is the same key
    (b'{"\\u0061":1,"a":2}', "a"),
    ('{"\\u00e9":1,"é":2}'.encode(), '["é"]'),  # a non-ASCII key, escaped once and raw once
    (b'{"customer":{"address":{"city":"A","city":"B"}}}', "customer.address.city"),
    (b'{"items":[{"sku":1},{"sku":2,"sku":3}]}', "items[1].sku"),  # arrays of objects
    (b'{"m":[[{"k":1}],[{"k":1,"k":1}]]}', "m[1][0].k"),  # identical repeats count too
    (b'{ "a" : 1 ,\n  "a" : 2 }', "a"),  # whitespace anywhere
    (b'{"first name":1,"first name":2}', '["first name"]'),
    (b'{"a.b":{"x":1},"a.b":{"x":1}}', '["a.b"]'),
    (b'{"n":1e400,"n":2}', "n"),  # beyond msgspec's range: the standard library parses it
    (b'{"a":":x","a":1}', "a"),  # a string starting with a colon
    (b'{"a":"\\u003ax","a":1}', "a"),  # the same, escaped
    (b'{"a":"say \\":\\"","a":1}', "a"),  # an escaped quote before a colon
    (b'{"a":1.0E2,"b":{"c":1,"c":2}}', "b.c"),  # a number msgspec would spell differently
    (b'{"a":{"x":1,"x":2},"a":3}', "a"),  # the outer repeat hides the inner one
    (b'{"b":[{"x":1,"x":2}],"a":1}', "b[0].x"),
])
def test_repeated_key_is_quarantined_with_its_path(parser, value, path):
    got = poison.classify(GOOD_KEY, value, *TS)
    assert got is not None and got[0] == f"{poison.DUPLICATE_JSON_KEY}:{path}", got
    assert "jsonb would keep only the last value" in got[1]
    assert poison.make_classifier()(GOOD_KEY, value, *TS) == got


def test_repeated_key_detail_names_the_key_the_object_and_the_count(parser):
    got = poison.classify(GOOD_KEY, b'{"items":[{"sku":1,"sku":2,"sku":3}]}', *TS)
    assert got[1].startswith('key "sku" appears 3 times in the object at items[0];'), got


def test_repeated_key_path_in_the_reason_is_bounded(parser):
    key = "k" * 500
    got = poison.classify(GOOD_KEY, f'{{"{key}":1,"{key}":2}}'.encode(), *TS)
    assert got[0].startswith(f"{poison.DUPLICATE_JSON_KEY}:kkk") and got[0].endswith("...")
    assert len(got[0]) == len(poison.DUPLICATE_JSON_KEY) + 1 + poison.MAX_REASON_PATH_CHARS


@pytest.mark.parametrize("value", [
    b'{"a":{"id":1},"b":{"id":2}}',  # the same key in different objects
    b'{"items":[{"sku":1,"qty":1},{"sku":2,"qty":1}]}',
    b'{"a":{"a":{"a":1}}}',  # the same name at every level
    b'{"a":"\\u0061","b":"a"}',  # equal values are not keys
    b'{"a":":x","b":"\\":","c":"\\u003a"}',  # colons and quotes inside strings
    b'{ "a" : 1 ,\n  "b" : [ 1 , 2 ] }',
    b'{"a":1.0E2,"b":-0,"c":1e400}',
    b'{"A":1,"a":2}',  # keys are case-sensitive
])
def test_distinct_keys_are_storable(parser, value):
    assert poison.classify(GOOD_KEY, value, *TS) is None
    assert poison.make_classifier()(GOOD_KEY, value, *TS) is None


def _random_object(rnd, depth=0) -> str:
    """Object text with repeats, escapes, odd spacing and number spellings: what the fast proofs must not
    miss."""
    ws = lambda: rnd.choice(["", "", " ", "\n  "])  # noqa: E731
    keys = ["a", "b", "\\u0061", "a b", "\\u00e9", "é", ":"]
    members = []
    for _ in range(rnd.randrange(0, 5)):
        kind = rnd.random()
        if depth < 3 and kind < 0.25:
            val = _random_object(rnd, depth + 1)
        elif depth < 3 and kind < 0.4:
            val = "[" + ",".join(_random_object(rnd, depth + 1) for _ in range(rnd.randrange(0, 3))) + "]"
        else:
            val = rnd.choice(["1", "1.0", "1E2", "-0", '"x"', '":"', '"\\":"', '"\\u003a"', "null", "true",
                              "[]"])
        members.append(f"{ws()}\"{rnd.choice(keys)}\"{ws()}:{ws()}{val}{ws()}")
    return "{" + ",".join(members) + "}"


def _repeats_a_key(text: str) -> bool:
    found = []

    def pairs(items):
        found.append(len(dict(items)) != len(items))
        return dict(items)

    json.loads(text, object_pairs_hook=pairs)
    return any(found)


def test_random_values_are_quarantined_exactly_when_an_object_repeats_a_key(parser):
    rnd = random.Random(13)
    check = poison.make_classifier()
    seen = Counter()
    for _ in range(3000):
        value = _random_object(rnd).encode()
        repeats = _repeats_a_key(value.decode())
        got = poison.classify(GOOD_KEY, value, *TS)
        if repeats:
            assert got is not None and got[0].startswith(poison.DUPLICATE_JSON_KEY + ":"), (value, got)
        else:
            assert got is None, (value, got)
        assert check(GOOD_KEY, value, *TS) == got, value
        seen[repeats] += 1
    assert seen[True] > 300 and seen[False] > 300, seen


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
              b'{"e":"\\ud83d\\uded2"}', b'{"a":1e400}', b'{"a":"' + b"x" * 300 + b'"}', b"{}", b" {} ",
              b'{"a":1,"a":2}', b'{"a":{"b":1},"c":[{"b":1,"b":2}]}', b'{"a":1,"\\u0061":2}', b'{ "a" : 1 }']
    keys = [None, b"", b"k", "clé".encode(), b"\xff", b"a\x00"]
    stamps = [(1, 0), (0, -1), (1, -2), (2, 5), (1, poison.MAX_TIMESTAMP_MS + 1)]
    check = poison.make_classifier(200)
    for value in values:
        for key in keys:
            for ts in stamps:
                assert check(key, value, *ts) == poison.classify(key, value, *ts, 200), (key, value, ts)
