"""Which Kafka messages can be stored in bronze.raw_events, and why the others cannot (pure, no I/O).

A message is storable when its value is a UTF-8 JSON object that PostgreSQL's jsonb accepts and stores
unchanged (no object names a key twice), its key is a non-empty UTF-8 string without NUL, its timestamp is a
real one, and the contract headers it carries (if any: docs/contracts.md, ``source``, ``schema_version``,
``logical_hour``, ``content_type``) describe a message this pipeline can read. Everything else goes to
bronze.raw_events_quarantine with one of the reasons below; nothing here ever stops a batch.

Headers are optional (bronze stores only the value; producers other than the extractor may send none), and
headers outside the contract are ignored. A contract header that is present must be well formed: one value
(repeats must agree), UTF-8, ``schema_version`` ``1``, ``content_type`` ``application/json`` (parameters such
as ``; charset=utf-8`` allowed), ``logical_hour`` an ISO-8601 UTC hour. A message announcing another schema
version or content type is quarantined as ``unsupported_schema_version`` / ``unsupported_content_type`` even
when its bytes happen to parse: silver would otherwise read a v2 shape with v1 rules. Header problems win
over value, key and timestamp ones (they say what the producer meant), except for tombstones.

The fast path parses with msgspec (~3 µs for a 500-byte object; it rejects what strict JSON rejects, e.g.
NaN). What msgspec refuses is re-checked with the standard library so that the reason is precise and so that
JSON that is valid but beyond msgspec's range (a number like 1e400, which jsonb accepts) is still stored.
jsonb is stricter than JSON in two ways checked here: no \\u0000 escapes and no unpaired surrogate escapes.
The rarest jsonb refusals (numbers beyond numeric's range such as 1e-20000) are caught by PostgreSQL itself
and handled by the loader (it isolates the row and quarantines it as ``jsonb_rejected``).

A key repeated within one object (``{"id": 1, "email": "a@x", "email": "b@x"}``, at any depth; ``"a"`` and
``"\\u0061"`` are the same key) is legal JSON, but jsonb keeps only the last value: bronze would store
something other than what it received, and silver would admit or reject the message under the surviving
values. It is quarantined as ``duplicate_json_key:<path>`` (the path of the first repeated key, e.g.
``email``, ``address.city``, ``items[0].sku``). The check costs ~0.5 µs on the extractor's messages:
re-encoding the parsed object (msgspec) gives back the bytes received, which proves that no key was lost;
other producers' spacing or escapes take a second or third proof (``_keys_provably_unique``, ~1-3 µs). Only
a value none of them proves (other number spellings) or that really repeats a key is re-parsed with the
standard library, which names the key.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:  # msgspec ships with Airflow (apache-airflow-core depends on it); the stdlib is the fallback.
    import msgspec

    _fast_decode = msgspec.json.Decoder().decode
    _fast_encode = msgspec.json.Encoder().encode
    _compact = msgspec.json.format  # whitespace out, every token (repeated keys, escapes) kept as received
except ImportError:  # pragma: no cover - exercised only without msgspec
    msgspec = None
    _fast_decode = None
    _fast_encode = None
    _compact = None

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
INVALID_HEADER = "invalid_header"
UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
DUPLICATE_JSON_KEY = "duplicate_json_key"  # stored as duplicate_json_key:<path of the repeated key>

REASONS = (TOMBSTONE, OVERSIZE, INVALID_UTF8, INVALID_JSON, NOT_OBJECT, JSONB_REJECTED, DUPLICATE_JSON_KEY,
           MISSING_KEY, INVALID_KEY, INVALID_TIMESTAMP, INVALID_HEADER, UNSUPPORTED_SCHEMA_VERSION,
           UNSUPPORTED_CONTENT_TYPE)

# The headers of docs/contracts.md and what this pipeline reads.
CONTRACT_HEADERS = ("source", "schema_version", "logical_hour", "content_type")
SUPPORTED_SCHEMA_VERSIONS = ("1",)
SUPPORTED_CONTENT_TYPES = ("application/json",)
_LOGICAL_HOUR = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):00:00Z")

DEFAULT_MAX_VALUE_BYTES = 1_048_576  # Kafka's default max.message.bytes; jsonb itself allows ~255 MB

# Kafka timestamps PostgreSQL's TIMESTAMP can hold and Python can show: 1970-01-01 .. 9999-12-31 (UTC).
MAX_TIMESTAMP_MS = 253_402_300_799_999

# A value needs the (slower) jsonb string check only if it has an escape that could be \u0000 or a surrogate.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_JSONB_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")

# A path step written as .name (else as ["..."]); the longest path a reason carries (keys are untrusted).
_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
MAX_REASON_PATH_CHARS = 120

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


class _RepeatedKeys(dict):
    """A parsed JSON object that named some keys more than once (the dict holds the last values, as jsonb
    would); ``repeated`` maps each such key to its number of occurrences, in the order they first appeared."""

    __slots__ = ("repeated",)


def _loads_marking_repeats(text: str) -> Any:
    """``json.loads`` in which every object that repeats a key comes back as a ``_RepeatedKeys``."""

    def object_from_pairs(pairs: list[tuple[str, Any]]) -> dict:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        marked = _RepeatedKeys(obj)
        counts: dict[str, int] = {}
        for key, _ in pairs:
            counts[key] = counts.get(key, 0) + 1
        marked.repeated = {key: n for key, n in counts.items() if n > 1}
        return marked

    return json.loads(text, object_pairs_hook=object_from_pairs, parse_constant=_reject_constant)


def _path_step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _first_repeated_key(obj: Any) -> tuple[str, str, int] | None:
    """(path of the object, repeated key, occurrences) of the first object that repeats a key, in document
    order (an object before the objects inside it); None when no object does."""
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        path, item = stack.pop()
        if type(item) is _RepeatedKeys:
            key, count = next(iter(item.repeated.items()))
            return path, key, count
        if isinstance(item, dict):
            inner = [(_path_step(path, k), v) for k, v in item.items() if isinstance(v, dict | list)]
        elif isinstance(item, list):
            inner = [(_path_step(path, i), v) for i, v in enumerate(item) if isinstance(v, dict | list)]
        else:
            continue
        stack.extend(reversed(inner))
    return None


def _repeated_key_reject(obj: Any) -> Reject | None:
    """The ``duplicate_json_key:<path>`` verdict for a value parsed by ``_loads_marking_repeats``, or None."""
    found = _first_repeated_key(obj)
    if found is None:
        return None
    path, key, count = found
    key_path = _path_step(path, key)
    if len(key_path) > MAX_REASON_PATH_CHARS:
        key_path = key_path[:MAX_REASON_PATH_CHARS - 3] + "..."
    where = f"the object at {path[:200]}" if path else "the top-level object"
    shown_key = json.dumps(key, ensure_ascii=False)[:100]
    return (f"{DUPLICATE_JSON_KEY}:{key_path}",
            f"key {shown_key} appears {count} times in {where}; jsonb would keep only the last value, so the "
            f"message is kept here as received")


def _count_keys(obj: dict) -> int:
    """The number of keys of every object in a parsed value."""
    count = 0
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            count += len(item)
            item = item.values()
        for child in item:
            if type(child) is dict or type(child) is list:
                stack.append(child)
    return count


def _keys_provably_unique(obj: dict, value: bytes) -> bool:
    """True when no key of ``value`` was lost to a repeat in ``obj`` (its msgspec parse). False says nothing
    (the value may only spell a number or a string differently); the caller then asks the standard library.

    Proofs, cheapest first: msgspec's re-encoding of ``obj`` is ``value`` itself, or ``value`` without its
    whitespace (the same tokens); else, in that compact text every key ends with ``":`` and so does nothing
    else but a string starting with ``:`` or an escaped quote before a colon: as many ``":`` as ``obj`` has
    keys means as many keys in ``value`` as in ``obj`` (a repeat would leave ``obj`` with fewer).
    """
    encoded = _fast_encode(obj)
    if encoded == value:
        return True
    try:
        compact = _compact(value, indent=-1)
    except Exception:  # noqa: BLE001 - cannot prove it here; the standard library decides
        return False
    return encoded == compact or compact.count(b'":') == _count_keys(obj)


def _slow_value_check(value: bytes) -> tuple[Any, Reject | None]:
    """Parse with the standard library (exact reasons; accepts what jsonb accepts beyond msgspec's range).
    Objects that repeat a key come back as ``_RepeatedKeys``."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (INVALID_UTF8, str(exc))
    try:
        obj = _loads_marking_repeats(text)
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
    if not isinstance(obj, dict):
        return NOT_OBJECT, f"JSON {type(obj).__name__}, not an object"
    if not parsed or (b"\\u" in value and _SUSPECT_ESCAPE.search(value)):
        bad = _jsonb_bad_string(obj)
        if bad is not None:
            what = "\\u0000" if "\x00" in bad else "an unpaired surrogate escape"
            return JSONB_REJECTED, f"jsonb cannot store a string with {what}"
    if parsed:
        if _keys_provably_unique(obj, value):
            return None
        obj, reject = _slow_value_check(value)  # msgspec parsed it: only the stdlib's depth limit can fail
        if reject is not None:
            return reject
    return _repeated_key_reject(obj)


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


def classify_headers(headers: Any) -> Reject | None:
    """None when the message's contract headers (if any) are well formed and supported, else (reason, detail).

    ``headers`` as confluent-kafka returns them: None or a list of (name, value) with value bytes or None.
    """
    if not headers:
        return None
    seen: dict[str, str] = {}
    for item in headers:
        try:
            name, raw = item
        except (TypeError, ValueError):
            return INVALID_HEADER, f"malformed header entry {item!r}"[:200]
        if isinstance(name, bytes):
            try:
                name = name.decode("utf-8")
            except UnicodeDecodeError:
                return INVALID_HEADER, f"header name is not UTF-8: {name[:40]!r}"
        if name not in CONTRACT_HEADERS:
            continue  # tracing and other producers' headers are none of bronze's business
        if raw is None:
            return INVALID_HEADER, f"header {name!r} has no value"
        if isinstance(raw, str):
            text = raw
        else:
            try:
                text = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                return INVALID_HEADER, f"header {name!r} is not UTF-8: {exc}"
        text = text.strip()
        if not text or "\x00" in text:
            return INVALID_HEADER, f"header {name!r} is empty or contains NUL"
        if name in seen and seen[name] != text:
            return INVALID_HEADER, f"header {name!r} repeated with different values {seen[name]!r}, {text!r}"[:300]
        seen[name] = text
    version = seen.get("schema_version")
    if version is not None and version not in SUPPORTED_SCHEMA_VERSIONS:
        return (UNSUPPORTED_SCHEMA_VERSION,
                f"schema_version {version[:40]!r} is not supported ({', '.join(SUPPORTED_SCHEMA_VERSIONS)})")
    ctype = seen.get("content_type")
    if ctype is not None and ctype.split(";", 1)[0].strip().lower() not in SUPPORTED_CONTENT_TYPES:
        return UNSUPPORTED_CONTENT_TYPE, f"content_type {ctype[:80]!r} is not application/json"
    hour = seen.get("logical_hour")
    if hour is not None and not _LOGICAL_HOUR.fullmatch(hour):
        return INVALID_HEADER, f"header 'logical_hour' {hour[:60]!r} is not an ISO-8601 UTC hour"
    return None


def classify(key: bytes | None, value: bytes | None, ts_type: int, ts_ms: int,
             max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES, headers: Any = None) -> Reject | None:
    """None for a storable message, else (reason, detail). Tombstones first, then header problems, then
    value problems, then key and timestamp ones."""
    if value is None:
        return TOMBSTONE, "null value (tombstone)"
    return (classify_headers(headers) or classify_value(value, max_value_bytes) or classify_key(key)
            or classify_timestamp(ts_type, ts_ms))


def make_classifier(max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES):
    """``classify`` with its common case inlined (one call per message in the loader's hot loop).

    A plain ASCII key, a value within the limit that msgspec parses as an object with no ``\\u`` escape and
    keys provably unique (``_keys_provably_unique``), a real timestamp and no headers (or the contract's
    usual ones) are accepted right here; anything else goes through ``classify`` for its reason.
    """
    decode = _fast_decode
    keys_unique = _keys_provably_unique
    max_ts = MAX_TIMESTAMP_MS
    # The extractor's messages of one topic and hour carry identical headers: remember recent verdicts.
    header_verdicts: dict[tuple, Reject | None] = {}

    def headers_ok(headers: Any) -> bool:
        try:
            cache_key = tuple(headers)
            verdict = header_verdicts[cache_key]
        except KeyError:
            verdict = classify_headers(headers)
            if len(header_verdicts) >= 1024:
                header_verdicts.clear()
            header_verdicts[cache_key] = verdict
        except TypeError:  # unhashable: not what confluent-kafka returns, check it the slow way
            verdict = classify_headers(headers)
        return verdict is None

    def check(key: bytes | None, value: bytes | None, ts_type: int, ts_ms: int,
              headers: Any = None) -> Reject | None:
        if headers and value is not None and not headers_ok(headers):
            return classify(key, value, ts_type, ts_ms, max_value_bytes, headers)
        if (decode is not None and value is not None and key and ts_type and 0 <= ts_ms <= max_ts
                and len(value) <= max_value_bytes and key.isascii() and b"\x00" not in key
                and b"\\u" not in value):
            try:
                obj = decode(value)
                if type(obj) is dict and keys_unique(obj, value):
                    return None
            except Exception:  # noqa: BLE001 - classify() below says why
                pass
        return classify(key, value, ts_type, ts_ms, max_value_bytes)

    return check
