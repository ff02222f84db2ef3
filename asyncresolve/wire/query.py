"""Queries from pre-rendered templates: only the ID, the name (0x20 applied) and the type change.

A query is the 12-byte header (ID, flags, counts), the question and, with EDNS, an OPT
record. ``QueryTemplate`` renders the constant parts once; ``render`` joins them with a
fresh ID and the name's wire form. ``name_to_wire`` memoises the wire form of each name,
and ``randomise_case`` flips the case of its letters from random bits (0x20 encoding) with
one XOR over the whole name. Random bits come from ``RandomSource``, which reads the
operating system's CSPRNG (``os.urandom``) in blocks: IDs, ports and 0x20 bits must not be
predictable (RFC 5452).
"""

from __future__ import annotations

import os
import struct

import dns.exception
import dns.name

_QTAIL = struct.Struct("!HH")
_NAME_MEMO_LIMIT = 65_536
_name_memo: dict[str, bytes] = {}
# 0x20 at the letters of a name's wire form, 0 elsewhere (length bytes are < 64: never letters)
_LETTERS = bytes(0x20 if (65 <= c <= 90 or 97 <= c <= 122) else 0 for c in range(256))


class RandomSource:
    """Unpredictable bits from ``os.urandom``, read ``block`` bytes at a time (and 16-bit
    numbers, for IDs and ports, from a block of their own)."""

    __slots__ = ("_block", "_buffer", "_pos", "_u16s")

    def __init__(self, block: int = 8192) -> None:
        self._block = block
        self._buffer = b""
        self._pos = 0
        self._u16s: list[int] = []

    def take(self, count: int) -> bytes:
        pos = self._pos
        end = pos + count
        if end > len(self._buffer):
            self._buffer = os.urandom(max(self._block, count))
            pos, end = 0, count
        self._pos = end
        return self._buffer[pos:end]

    def u16(self) -> int:
        u16s = self._u16s
        if not u16s:
            count = max(1, self._block // 2)
            u16s.extend(struct.unpack(f"!{count}H", os.urandom(2 * count)))
        return u16s.pop()


def name_to_wire(name: str) -> bytes:
    """Wire form of an absolute presentation name (``"www.example.com."``)."""
    wire = _name_memo.get(name)
    if wire is None:
        if "\\" in name:
            try:
                wire = bytes(dns.name.from_text(name).to_wire() or b"")
            except dns.exception.DNSException as exc:  # a bad escape, an empty label...
                raise ValueError(f"bad name {name!r}: {exc}") from None
        elif name == ".":
            wire = b"\0"
        else:
            out = bytearray()
            # one final dot off (not every one: "a.." has an empty label, which is refused)
            for label in (name[:-1] if name[-1:] == "." else name).encode("ascii").split(b"."):
                size = len(label)
                if not 0 < size < 64:
                    raise ValueError(f"bad label in {name!r}")
                out.append(size)
                out += label
            out.append(0)
            wire = bytes(out)
        if len(wire) > 255:
            raise ValueError(f"name too long: {name[:40]!r}...")
        if len(_name_memo) >= _NAME_MEMO_LIMIT:
            _name_memo.clear()
        _name_memo[name] = wire
    return wire


_letters_memo: dict[bytes, tuple[int, int]] = {}
_LENGTH_BYTE = [bytes((size,)) for size in range(64)]


def randomise_case(wire: bytes, random: RandomSource) -> bytes:
    """0x20: each letter of the wire-form name flipped to the other case with probability 1/2."""
    size = len(wire)
    known = _letters_memo.get(wire)
    if known is None:
        if len(_letters_memo) >= _NAME_MEMO_LIMIT:
            _letters_memo.clear()
        known = _letters_memo[wire] = (int.from_bytes(wire.translate(_LETTERS), "big"), int.from_bytes(wire, "big"))
    mask = known[0] & int.from_bytes(random.take(size), "big")
    if not mask:
        return wire
    return (known[1] ^ mask).to_bytes(size, "big")


def name_to_wire_0x20(name: str, random: RandomSource) -> bytes:
    """``randomise_case(name_to_wire(name), random)`` in one pass, for a name asked once.

    Same result for the same random bits, and the same ``ValueError`` for a bad name; the
    case is flipped on the presentation text before it is cut into labels, and nothing is
    memoised: a bulk run asks each name once, and filling the two memo tables with names
    never seen again cost more than the work they saved (about half of this function's time).
    """
    if name[-1:] != "." or "\\" in name or ".." in name or name[:1] == ".":
        return randomise_case(name_to_wire(name), random)  # root, relative, escaped or odd: the general way
    text = name.encode("ascii")
    size = len(text)
    # one random byte per byte of the wire form, as randomise_case takes them: the first one
    # (the first length byte's) falls outside the text's mask, the others line up with the text
    mask = int.from_bytes(text.translate(_LETTERS), "big") & int.from_bytes(random.take(size + 1), "big")
    if mask:
        text = (int.from_bytes(text, "big") ^ mask).to_bytes(size, "big")
    labels = text.split(b".")
    labels.pop()  # the empty label after the final dot
    try:
        wire = b"".join([_LENGTH_BYTE[len(label)] + label for label in labels]) + b"\0"
    except IndexError:
        raise ValueError(f"bad label in {name!r}") from None
    if len(wire) > 255:
        raise ValueError(f"name too long: {name[:40]!r}...")
    return wire


class QueryTemplate:
    """The constant parts of a query: header flags and counts, and the EDNS OPT record.

    :param recursion_desired: set RD (a stub query) or not (an iterative resolver's).
    :param edns_payload: the UDP payload size advertised in an OPT record; 0 for no EDNS.
    """

    __slots__ = ("_header", "_opt")

    def __init__(self, *, recursion_desired: bool, edns_payload: int = 1232) -> None:
        flags = 0x0100 if recursion_desired else 0
        arcount = 1 if edns_payload else 0
        self._header = struct.pack("!HHHH", flags, 1, 0, 0) + struct.pack("!H", arcount)
        self._opt = struct.pack("!BHHIH", 0, 41, edns_payload, 0, 0) if edns_payload else b""

    def render(self, qid: int, qname_wire: bytes, qtype: int, qclass: int = 1) -> bytes:
        """The query bytes: ``question(qname_wire, qtype)`` after the header, then the OPT."""
        return self.render_question(qid, question(qname_wire, qtype, qclass))

    def render_question(self, qid: int, question: bytes) -> bytes:
        """The query bytes around a question section made by ``question``."""
        return b"".join((qid.to_bytes(2, "big"), self._header, question, self._opt))


_tails: dict[tuple[int, int], bytes] = {}


def question(qname_wire: bytes, qtype: int, qclass: int = 1) -> bytes:
    """The question section as sent, which a reply must echo byte for byte."""
    tail = _tails.get((qtype, qclass))
    if tail is None:
        tail = _tails[(qtype, qclass)] = _QTAIL.pack(qtype, qclass)
    return qname_wire + tail
