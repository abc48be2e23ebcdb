"""PostgreSQL binary COPY rows for bronze.raw_events, built straight from Kafka's bytes (pure, no I/O).

Binary COPY needs no escaping (the JSON bytes go through untouched, prefixed by jsonb's version byte) and
saves the server the text parsing of the integer and timestamp columns. Column order is ``COPY_COLUMNS``.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta

COPY_COLUMNS = '(topic, record_key, record_value, "partition", "offset", event_ts)'

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)  # signature, flags, header extension length
TRAILER = struct.pack("!h", -1)

_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z in ms since the Unix epoch (binary timestamps' origin)
_TAIL = struct.Struct("!iiiqiq")  # partition (int4), offset (int8), event_ts (int8 µs since 2000-01-01)
_INT = struct.Struct("!i")
_JSONB_HEAD = struct.Struct("!ib")  # field length, jsonb binary format version (1)


class RowEncoder:
    """Encodes (key, value, partition, offset, timestamp ms) rows of one topic."""

    __slots__ = ("topic", "_prefix")

    def __init__(self, topic: str):
        self.topic = topic
        topic_b = topic.encode("utf-8")
        self._prefix = struct.pack("!hi", 6, len(topic_b)) + topic_b

    def encode(self, key: bytes, value: bytes, partition: int, offset: int, ts_ms: int) -> bytes:
        return b"".join((
            self._prefix,
            _INT.pack(len(key)), key,
            _JSONB_HEAD.pack(len(value) + 1, 1), value,
            _TAIL.pack(4, partition, 8, offset, 8, (ts_ms - _PG_EPOCH_MS) * 1000),
        ))


def ms_to_utc_naive(ts_ms: int) -> datetime:
    """Kafka timestamp (ms) -> naive UTC datetime, as stored in TIMESTAMP columns."""
    return datetime(1970, 1, 1) + timedelta(milliseconds=ts_ms)
