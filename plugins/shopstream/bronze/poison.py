"""Which Kafka messages can be stored in bronze.raw_events, and why the others cannot (pure, no I/O).

A message is storable when its value is a UTF-8 JSON object that PostgreSQL's jsonb accepts, its key is a
non-empty UTF-8 string without NUL, and its timestamp is a real one. Everything else goes to
bronze.raw_events_quarantine with one of the reasons below; nothing here ever stops a batch.

The fast path parses with msgspec (~3 µs for a 500-byte object; it rejects what strict JSON rejects, e.g.
NaN). What msgspec refuses is re-checked with the standard library so that the reason is precise and so that
JSON that is valid but beyond msgspec's range (a number like 1e400, which jsonb accepts) is still stored.
jsonb is stricter than JSON in two ways checked here: no \\u0000 escapes and no unpaired surrogate escapes.
The rarest jsonb refusals (numbers beyond numeric's range such as 1e-20000) are caught by PostgreSQL itself
and handled by the loader (it isolates the row and quarantines it as ``jsonb_rejected``).
"""

from __future__ import annotations

import json
import re
from typing import Any

try:  # msgspec ships with Airflow (apache-airflow-core depends on it); the stdlib is the fallback.
    import msgspec

    _fast_decode = msgspec.json.Decoder().decode
except ImportError:  # pragma: no cover - exercised only without msgspec
    msgspec = None
    _fast_decode = None

# Reasons (bronze.raw_events_quarantine.reason).
TOMBSTONE = "tombstone"
OVERSIZE = "oversize"
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_OBJECT = "not_object"
JSONB_REJECTED = "jsonb_rejected"
MISSING_KEY = "missing_key"
INVALID_KEY = "invalid_key"
INVALID_TIMESTAMP = "invalid_timestamp"

REASONS = (TOMBSTONE, OVERSIZE, INVALID_UTF8, INVALID_JSON, NOT_OBJECT, JSONB_REJECTED, MISSING_KEY,
           INVALID_KEY, INVALID_TIMESTAMP)

DEFAULT_MAX_VALUE_BYTES = 1_048_576  # Kafka's default max.message.bytes; jsonb itself allows ~255 MB

# Kafka timestamps PostgreSQL's TIMESTAMP can hold and Python can show: 1970-01-01 .. 9999-12-31 (UTC).
MAX_TIMESTAMP_MS = 253_402_300_799_999

# A value needs the (slower) jsonb string check only if it has an escape that could be \u0000 or a surrogate.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_JSONB_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")

Reject = tuple[str, str]  # (reason, detail)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _jsonb_bad_string(obj: Any) -> str | None:
    """The first string (key or value) jsonb cannot hold: a NUL or an unpaired surrogate; None if none."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _JSONB_BAD_CHAR.search(item):
                return item
        elif isinstance(item, dict):
            for k, v in item.items():
                if _JSONB_BAD_CHAR.search(k):
                    return k
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _slow_value_check(value: bytes) -> tuple[Any, Reject | None]:
    """Parse with the standard library (exact reasons; accepts what jsonb accepts beyond msgspec's range)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (INVALID_UTF8, str(exc))
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return None, (INVALID_JSON, "nested deeper than the JSON parser's limit")
    except ValueError as exc:
        return None, (INVALID_JSON, str(exc))
    return obj, None


def classify_value(value: bytes | None, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> Reject | None:
    """None when the value can go to raw_events.record_value (JSONB), else (reason, detail)."""
    if value is None:
        return TOMBSTONE, "null value (tombstone)"
    if len(value) > max_value_bytes:
        return OVERSIZE, f"value is {len(value)} bytes, limit {max_value_bytes}"
    obj = None
    parsed = False
    if _fast_decode is not None:
        try:
            obj = _fast_decode(value)
            parsed = True
        except Exception:  # noqa: BLE001 - whatever msgspec refuses, the stdlib re-check says why
            pass
    if not parsed:
        obj, reject = _slow_value_check(value)
        if reject is not None:
            return reject
    if type(obj) is not dict:
        return NOT_OBJECT, f"JSON {type(obj).__name__}, not an object"
    if not parsed or (b"\\u" in value and _SUSPECT_ESCAPE.search(value)):
        bad = _jsonb_bad_string(obj)
        if bad is not None:
            what = "\\u0000" if "\x00" in bad else "an unpaired surrogate escape"
            return JSONB_REJECTED, f"jsonb cannot store a string with {what}"
    return None


def classify_key(key: bytes | None) -> Reject | None:
    """None when the key can go to raw_events.record_key (VARCHAR), else (reason, detail)."""
    if not key:
        return MISSING_KEY, "no key" if key is None else "empty key"
    try:
        key.decode("utf-8")
    except UnicodeDecodeError as exc:
        return INVALID_KEY, f"key is not UTF-8: {exc}"
    if b"\x00" in key:
        return INVALID_KEY, "key contains a NUL byte"
    return None


def classify_timestamp(ts_type: int, ts_ms: int) -> Reject | None:
    """None when the Kafka timestamp can become event_ts, else (reason, detail)."""
    if ts_type == 0:  # TIMESTAMP_NOT_AVAILABLE
        return INVALID_TIMESTAMP, "message has no timestamp"
    if ts_ms < 0 or ts_ms > MAX_TIMESTAMP_MS:
        return INVALID_TIMESTAMP, f"timestamp {ts_ms} ms is outside 1970..9999"
    return None


def classify(key: bytes | None, value: bytes | None, ts_type: int, ts_ms: int,
             max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> Reject | None:
    """None for a storable message, else (reason, detail). Value problems win over key and timestamp ones."""
    return (classify_value(value, max_value_bytes) or classify_key(key)
            or classify_timestamp(ts_type, ts_ms))


def make_classifier(max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES):
    """``classify`` with its common case inlined (one call per message in the loader's hot loop).

    A plain ASCII key, a value within the limit that msgspec parses as an object with no ``\\u`` escape and a
    real timestamp are accepted right here; anything else goes through ``classify`` for its reason.
    """
    decode = _fast_decode
    max_ts = MAX_TIMESTAMP_MS

    def check(key: bytes | None, value: bytes | None, ts_type: int, ts_ms: int) -> Reject | None:
        if (decode is not None and value is not None and key and ts_type and 0 <= ts_ms <= max_ts
                and len(value) <= max_value_bytes and key.isascii() and b"\x00" not in key
                and b"\\u" not in value):
            try:
                if type(decode(value)) is dict:
                    return None
            except Exception:  # noqa: BLE001 - classify() below says why
                pass
        return classify(key, value, ts_type, ts_ms, max_value_bytes)

    return check
