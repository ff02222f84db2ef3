"""The fast response parser: the common shapes of a DNS reply, exactly as dnspython reads them.

``parse(data)`` returns a ``WireResponse`` equal to what ``reference.parse`` (dnspython's
``from_wire(..., ignore_trailing=True)``) gives for the same bytes, or raises ``Decline``:
for any message it is not sure to read identically (an opcode other than QUERY, not one
question, a compressed question name, a class other than IN, a type outside
``FAST_TYPES``, EDNS options or extended rcode bits, TSIG...) and for every message
dnspython would reject. It never raises anything else. Differential tests hold it to
that (``tests/test_wire_differential.py``).

Names are decompressed with dnspython's rules, which are the strict ones: every pointer
goes strictly backwards from the previous one (so a loop is impossible), at most 16 hops,
the labels a pointer leads to must end before the segment that pointed at them, label
types 0x40/0x80 are refused, and a name is at most 255 bytes. Every offset is checked
against the end of the message (or of the record data) before it is read.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from .message import (
    DECLINE,
    FAST_TYPES,
    RRset,
    WireResponse,
)

_unpack_rr = struct.Struct("!HHIH").unpack_from
_unpack_header = struct.Struct("!HHHHHH").unpack_from
_unpack_hh = struct.Struct("!HH").unpack_from
_unpack_hhh = struct.Struct("!HHH").unpack_from
_unpack_soa = struct.Struct("!IIIII").unpack_from
_inet_ntoa = socket.inet_ntoa
_inet_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6

_MAX_HOPS = 16  # dnspython's MAX_COMPRESSION_POINTER_CHAIN

# dnspython's label escaping (Name.to_text), applied to the lower-cased label.
_ESCAPE = []
for _c in range(256):
    if _c in b'"().;\\@$':
        _ESCAPE.append("\\" + chr(_c))
    elif 0x20 < _c < 0x7F:
        _ESCAPE.append(chr(_c))
    else:
        _ESCAPE.append(f"\\{_c:03d}")
_SAFE = bytes(c for c in range(256) if 0x20 < c < 0x7F and c not in b'"().;\\@$')
_label_memo: dict[bytes, str] = {}
_LABEL_MEMO_LIMIT = 32_768


def _label_text(label: bytes) -> str:
    text = _label_memo.get(label)
    if text is None:
        lowered = label.lower()
        text = "".join([_ESCAPE[c] for c in lowered]) if lowered.translate(None, _SAFE) else lowered.decode("ascii")
        if len(_label_memo) >= _LABEL_MEMO_LIMIT:
            _label_memo.clear()
        _label_memo[label] = text
    return text


def _name(data: bytes, pos: int, limit: int, memo: dict[int, tuple[str, int, int, int]]) -> tuple[str, int]:
    """The name at ``pos`` (its first segment must end by ``limit``): (lower text, next offset).

    ``memo`` maps offsets where a name was read before to (text, end of its first segment,
    wire length, pointer hops): a pointer to such an offset reuses that reading when the
    rules above allow it there, which gives the same result as reading it again.
    """
    if pos + 2 <= limit and data[pos] >= 192:  # the usual case: one pointer to a name read before
        target = ((data[pos] & 0x3F) << 8) | data[pos + 1]
        known = memo.get(target)
        if known is not None and target < pos and known[1] <= pos and known[3] < _MAX_HOPS:
            text = known[0]
            memo[pos] = (text, pos + 2, known[2], known[3] + 1)
            return text, pos + 2
    parts: list[str] = []
    start = biggest = pos
    hops = 0
    total = 1
    after = -1
    p = pos
    suffix = ""
    while True:
        if p >= limit:
            raise DECLINE
        c = data[p]
        if c == 0:
            p += 1
            break
        if c < 64:
            q = p + 1 + c
            if q > limit:
                raise DECLINE
            parts.append(_label_text(data[p + 1:q]))
            total += c + 1
            p = q
        elif c >= 192:
            if p + 2 > limit:
                raise DECLINE
            target = ((c & 0x3F) << 8) | data[p + 1]
            if after < 0:
                after = p + 2
            if target >= biggest:
                raise DECLINE
            hops += 1
            if hops > _MAX_HOPS:
                raise DECLINE
            known = memo.get(target)
            if known is not None and known[1] <= start:
                suffix, _, length, more = known
                total += length - 1
                hops += more
                if hops > _MAX_HOPS:
                    raise DECLINE
                break
            biggest = target
            limit = start  # the labels pointed at must end before this segment began
            p = start = target
        else:
            raise DECLINE
    if total > 255:
        raise DECLINE
    if after < 0:
        after = p
    if parts:
        text = ".".join(parts) + "." + suffix if suffix and suffix != "." else ".".join(parts) + "."
    else:
        text = suffix or "."
    memo[pos] = (text, after, total, hops)
    return text, after


def parse(data: bytes) -> WireResponse:
    """Parse a response the way dnspython would, or raise ``Decline`` (see the module docstring)."""
    try:
        return _parse(data)
    except (IndexError, struct.error, ValueError, OSError):
        raise DECLINE from None


def _parse(data: bytes) -> WireResponse:
    n = len(data)
    if n < 12:
        raise DECLINE
    qid, flags, qdcount, ancount, nscount, arcount = _unpack_header(data, 0)
    if qdcount != 1 or flags & 0x7800:  # one question, opcode QUERY
        raise DECLINE
    # the question: an uncompressed name (its wire form is what 0x20 checks compare)
    p = 12
    total = 1
    while True:
        if p >= n:
            raise DECLINE
        c = data[p]
        if c == 0:
            p += 1
            break
        if c >= 64:
            raise DECLINE
        p += 1 + c
        total += c + 1
    if total > 255 or p + 4 > n:
        raise DECLINE
    qname = data[12:p]
    # every suffix of the question name, for the pointers into it that follow
    memo: dict[int, tuple[str, int, int, int]] = {}
    if total > 1:
        parts = []
        offsets = []
        q = 12
        while data[q]:
            offsets.append(q)
            parts.append(_label_text(data[q + 1:q + 1 + data[q]]))
            q += 1 + data[q]
        parts.append("")
        for i, at in enumerate(offsets):
            memo[at] = (".".join(parts[i:]), p, p - at, 0)
    qtype, qclass = _unpack_hh(data, p)
    p += 4

    sections: list[list[RRset]] = [[], [], []]
    opt: tuple[int, int] | None = None
    for index, count in ((0, ancount), (1, nscount), (2, arcount)):
        groups: list[list[Any]] = []
        for _ in range(count):
            owner, p = _name(data, p, n, memo)
            if p + 10 > n:
                raise DECLINE
            rdtype, rdclass, ttl, rdlen = _unpack_rr(data, p)
            p += 10
            end = p + rdlen
            if end > n:
                raise DECLINE
            if rdtype == 41:
                # OPT: only one, in the additional section, owned by the root, no options
                if index != 2 or opt is not None or owner != "." or rdlen:
                    raise DECLINE
                if ttl & 0xFF000000:  # extended rcode bits: left to dnspython
                    raise DECLINE
                opt = (rdclass, ttl)
                continue
            if rdclass != 1 or rdtype not in FAST_TYPES:
                raise DECLINE
            if ttl > 0x7FFFFFFF:
                ttl = 0
            if rdtype == 1:  # A
                if rdlen != 4:
                    raise DECLINE
                value: object = _inet_ntoa(data[p:end])
            elif rdtype == 28:  # AAAA
                if rdlen != 16:
                    raise DECLINE
                value = _inet_ntop(_AF_INET6, data[p:end])
            elif rdtype == 5 or rdtype == 2 or rdtype == 12:  # CNAME, NS, PTR
                value, q = _name(data, p, end, memo)
                if q != end:
                    raise DECLINE
            elif rdtype == 6:  # SOA
                mname, q = _name(data, p, end, memo)
                rname, q = _name(data, q, end, memo)
                if q + 20 != end:
                    raise DECLINE
                value = (mname, rname, *_unpack_soa(data, q))
            elif rdtype == 15:  # MX
                if rdlen < 3:
                    raise DECLINE
                exchange, q = _name(data, p + 2, end, memo)
                if q != end:
                    raise DECLINE
                value = ((data[p] << 8) | data[p + 1], exchange)
            elif rdtype == 33:  # SRV
                if rdlen < 7:
                    raise DECLINE
                target, q = _name(data, p + 6, end, memo)
                if q != end:
                    raise DECLINE
                value = (*_unpack_hhh(data, p), target)
            else:  # TXT
                if not rdlen:
                    raise DECLINE
                strings = []
                q = p
                while q < end:
                    r = q + 1 + data[q]
                    if r > end:
                        raise DECLINE
                    strings.append(data[q + 1:r])
                    q = r
                value = tuple(strings)
            p = end
            for group in groups:
                if group[1] == rdtype and group[0] == owner:
                    if ttl < group[3]:
                        group[3] = ttl
                    items = group[4]
                    if rdtype == 5 or rdtype == 6:  # singletons: the last one stays
                        items[:] = [value]
                    elif value not in items:
                        items.append(value)
                    break
            else:
                groups.append([owner, rdtype, 1, ttl, [value]])
        sections[index] = [(g[0], g[1], g[2], g[3], tuple(g[4])) for g in groups]
    response = WireResponse(qid, flags, qname, qtype, qclass, sections[0], sections[1], sections[2], opt)
    response.qtext = memo[12][0] if total > 1 else "."
    return response
