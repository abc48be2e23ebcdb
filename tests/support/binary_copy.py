"""Reads back PostgreSQL binary COPY data made by shopstream.bronze.copyrows, so tests can assert on the rows the
loader would send (the pipeline itself only encodes)."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta

from shopstream.bronze.copyrows import SIGNATURE


def decode_rows(data: bytes) -> list[tuple[str, str | None, str, int, int, datetime]]:
    """Parse binary COPY data made of encoded rows (with or without signature/trailer)."""
    out = []
    pos = len(SIGNATURE) if data.startswith(SIGNATURE[:11]) else 0
    while pos < len(data):
        (nfields,) = struct.unpack_from("!h", data, pos)
        pos += 2
        if nfields == -1:
            break
        fields: list[bytes | None] = []
        for _ in range(nfields):
            (n,) = struct.unpack_from("!i", data, pos)
            pos += 4
            if n < 0:
                fields.append(None)
            else:
                fields.append(data[pos:pos + n])
                pos += n
        topic, key, value, part, off, ts = fields
        assert value is not None and value[0] == 1
        out.append((
            topic.decode(), None if key is None else key.decode(), value[1:].decode(),
            struct.unpack("!i", part)[0], struct.unpack("!q", off)[0],
            datetime(2000, 1, 1) + timedelta(microseconds=struct.unpack("!q", ts)[0]),
        ))
    return out

