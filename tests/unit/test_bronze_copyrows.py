"""Binary COPY encoding of bronze rows (shopstream.bronze.copyrows)."""

from __future__ import annotations

import struct
from datetime import datetime

from shopstream.bronze.copyrows import SIGNATURE, TRAILER, RowEncoder, ms_to_utc_naive

from tests.support.binary_copy import decode_rows


def test_round_trip():
    enc = RowEncoder("orders-x")
    value = '{"order_id":"o-1","note":"Zoë\\n\\"q\\"\t"}'.encode()
    rows = [enc.encode(b"o-1", value, 2, 12345678901, 1_748_782_800_123),
            enc.encode("clé".encode(), b"{}", 0, 0, 0)]
    data = SIGNATURE + b"".join(rows) + TRAILER
    assert decode_rows(data) == [
        ("orders-x", "o-1", value.decode(), 2, 12345678901, datetime(2025, 6, 1, 13, 0, 0, 123000)),
        ("orders-x", "clé", "{}", 0, 0, datetime(1970, 1, 1)),
    ]


def test_layout_of_one_row():
    row = RowEncoder("t").encode(b"k", b"{}", 1, 2, 946_684_800_000)  # 2000-01-01: binary timestamp 0
    assert row == (struct.pack("!h", 6) + struct.pack("!i", 1) + b"t" + struct.pack("!i", 1) + b"k"
                   + struct.pack("!ib", 3, 1) + b"{}" + struct.pack("!ii", 4, 1) + struct.pack("!iq", 8, 2)
                   + struct.pack("!iq", 8, 0))


def test_signature_and_trailer():
    assert SIGNATURE == b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    assert TRAILER == b"\xff\xff"


def test_ms_to_utc_naive():
    assert ms_to_utc_naive(1_748_782_800_000) == datetime(2025, 6, 1, 13)
    assert ms_to_utc_naive(0) == datetime(1970, 1, 1)
