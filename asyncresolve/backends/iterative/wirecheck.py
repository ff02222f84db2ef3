"""A cheap structural check of the sections a fast parse skips.

The transport parses a final answer only up to its answer section (see
``Transport._parse``); ``sections_hold_together`` walks the rest of the message without
decoding it: every record's name, fixed fields and RDATA must lie inside the data, the
counts must match what is there, and there may be at most one OPT record. A message
that fails is parsed whole (and so refused, as dnspython refuses it): garbage after a
well-formed answer section never passes for an answer.
"""

from __future__ import annotations

_OPT = 41


def _skip_name(data: bytes, offset: int) -> int:
    """Offset just after the (possibly compressed) name at ``offset``; -1 if broken."""
    end = len(data)
    while offset < end:
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2 if offset + 2 <= end else -1
        if length & 0xC0:
            return -1  # reserved label types
        offset += 1 + length
    return -1


def sections_hold_together(data: bytes) -> bool:
    """Do the question, answer, authority and additional sections fit the data exactly?"""
    if len(data) < 12:
        return False
    qdcount = int.from_bytes(data[4:6], "big")
    rrcount = sum(int.from_bytes(data[i:i + 2], "big") for i in (6, 8, 10))
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(data, offset)
        if offset < 0 or offset + 4 > len(data):
            return False
        offset += 4
    opts = 0
    for _ in range(rrcount):
        offset = _skip_name(data, offset)
        if offset < 0 or offset + 10 > len(data):
            return False
        if int.from_bytes(data[offset:offset + 2], "big") == _OPT:
            opts += 1
        offset += 10 + int.from_bytes(data[offset + 8:offset + 10], "big")
        if offset > len(data):
            return False
    return opts <= 1 and offset == len(data)
