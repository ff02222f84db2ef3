"""Broken and hostile replies for the ``malformed`` and ``forge`` faults.

``MALFORMED`` maps a variant name to a function ``(query_wire, reply_wire, rng) -> bytes``
giving bytes that are not a valid DNS response (truncated headers, compression-pointer
loops, counts beyond the data, huge RDLENGTH, random bytes...). Each keeps the query's
ID, so a client cannot throw it away on the ID alone: it has to survive parsing it.

``FORGED`` maps a name to a function ``(query) -> dns.message.Message | bytes`` giving a
reply that parses but that no honest server sends: the query echoed back, another opcode,
a reserved rcode, records of another class or owner, a CNAME loop, a TTL of 2^31...
A resolver must never turn one into a (cached) answer or negative answer.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.OPT
import dns.rrset

Mangler = Callable[[bytes, bytes, random.Random], bytes]

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # TYPE, CLASS, TTL, RDLENGTH
_QPTR = b"\xc0\x0c"  # a compression pointer to the question name
_QR_AA = 0x8400


def _question(query: bytes) -> bytes:
    """The question section of ``query`` (an uncompressed name, QTYPE, QCLASS)."""
    i = 12
    while i < len(query) and query[i] != 0:
        i += 1 + query[i]
    return query[12:i + 5]


def _qid(query: bytes) -> int:
    return int.from_bytes(query[:2], "big") if len(query) >= 2 else 0


def _header(query: bytes, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, flags: int = _QR_AA) -> bytes:
    return _HEADER.pack(_qid(query), flags, qd, an, ns, ar)


def _rr(name: bytes, rdtype: int, rdata: bytes, rdlength: int | None = None, ttl: int = 300) -> bytes:
    size = len(rdata) if rdlength is None else rdlength
    return name + _RR_FIXED.pack(rdtype, 1, ttl, size) + rdata


def _one_answer(query: bytes, rr: bytes, an: int = 1) -> bytes:
    return _header(query, an=an) + _question(query) + rr


_A = _rr(_QPTR, 1, bytes((192, 0, 2, 66)))


def _random(size: int) -> Mangler:
    def mangle(query: bytes, reply: bytes, rng: random.Random) -> bytes:
        return query[:2] + rng.randbytes(max(0, size - 2))
    return mangle


def _flip_bits(query: bytes, reply: bytes, rng: random.Random) -> bytes:
    data = bytearray(reply if len(reply) > 12 else _one_answer(query, _A))
    for _ in range(8):
        i = rng.randrange(12, len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def _label_bytes(count: int, size: int) -> bytes:
    return (bytes([size]) + b"a" * size) * count


MALFORMED: dict[str, Mangler] = {
    "empty": lambda q, r, g: b"",
    "one-byte": lambda q, r, g: q[:1],
    "short-header": lambda q, r, g: _header(q)[:11],
    "header-only": lambda q, r, g: _header(q, an=1),
    "cut-question": lambda q, r, g: (r or _one_answer(q, _A))[:14],
    "question-without-type": lambda q, r, g: _header(q, qd=1) + _question(q)[:-4],
    "question-name-unterminated": lambda q, r, g: _header(q, qd=1) + _question(q)[:-5],
    "reserved-label-type-40": lambda q, r, g: _header(q, an=1) + _question(q) + b"\x40" + _A[2:],
    "reserved-label-type-80": lambda q, r, g: _header(q, an=1) + _question(q) + b"\x80\x01" + _A[2:],
    "pointer-to-itself": lambda q, r, g: _one_answer(q, _rr(
        struct.pack("!H", 0xC000 | (12 + len(_question(q)))), 1, b"\xc0\x00\x02\x01")),
    "pointer-loop": lambda q, r, g: _one_answer(q, _rr(
        struct.pack("!H", 0xC000 | (14 + len(_question(q)))), 1, b"")[:2]
        + struct.pack("!H", 0xC000 | (12 + len(_question(q)))) + _RR_FIXED.pack(1, 1, 300, 4) + b"\xc0\x00\x02\x01"),
    "pointer-beyond-data": lambda q, r, g: _one_answer(q, _rr(b"\xcf\xff", 1, b"\xc0\x00\x02\x01")),
    "pointer-into-header": lambda q, r, g: _one_answer(q, _rr(b"\xc0\x02", 1, b"\xc0\x00\x02\x01")),
    "pointer-forward": lambda q, r, g: _one_answer(q, _rr(b"\xc0\xf0", 1, b"\xc0\x00\x02\x01")) + b"\x00" * 4,
    "name-over-255": lambda q, r, g: _one_answer(q, _rr(_label_bytes(5, 63) + b"\x00", 1, b"\xc0\x00\x02\x01")),
    "label-over-63": lambda q, r, g: _one_answer(q, _rr(b"\x3f" + b"a" * 20 + b"\x00", 1, b"\xc0\x00\x02\x01")),
    "qdcount-beyond": lambda q, r, g: _header(q, qd=2) + _question(q),
    "ancount-beyond": lambda q, r, g: _header(q, an=5) + _question(q) + _A,
    "nscount-beyond": lambda q, r, g: _header(q, an=1, ns=3) + _question(q) + _A,
    "arcount-beyond": lambda q, r, g: _header(q, an=1, ar=7) + _question(q) + _A,
    "all-counts-max": lambda q, r, g: _header(q, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF) + _question(q) + _A,
    "huge-rdlength": lambda q, r, g: _one_answer(q, _rr(_QPTR, 1, b"\xc0\x00\x02\x01", rdlength=0xFFFF)),
    "rdlength-short-a": lambda q, r, g: _one_answer(q, _rr(_QPTR, 1, b"\xc0\x00")),
    "rdlength-long-a": lambda q, r, g: _one_answer(q, _rr(_QPTR, 1, b"\xc0\x00\x02\x01\x05")),
    "empty-a-rdata": lambda q, r, g: _one_answer(q, _rr(_QPTR, 1, b"")),
    "cut-in-rr-header": lambda q, r, g: _one_answer(q, _A)[:-8],
    "cut-in-rdata": lambda q, r, g: _one_answer(q, _A)[:-2],
    "cname-rdata-pointer-loop": lambda q, r, g: _one_answer(q, _rr(
        _QPTR, 5, struct.pack("!H", 0xC000 | (12 + len(_question(q)) + 12)))),
    "soa-rdata-cut": lambda q, r, g: _header(q, ns=1) + _question(q) + _rr(_QPTR, 6, b"\xc0\x0c\xc0\x0c\x00\x01"),
    "two-opt-records": lambda q, r, g: _header(q, an=1, ar=2) + _question(q) + _A
        + b"\x00" + _RR_FIXED.pack(41, 1232, 0, 0) + b"\x00" + _RR_FIXED.pack(41, 1232, 0, 0),
    "random-12": _random(12),
    "random-512": _random(512),
    "random-body": lambda q, r, g: _header(q, an=1) + g.randbytes(200),
    "bit-flips": _flip_bits,
}
"""Named malformed replies (34 variants)."""


# -- parseable but dishonest replies ------------------------------------------------------

def _base(query: dns.message.Message, *, aa: bool = True) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags &= ~dns.flags.RD
    if aa:
        response.flags |= dns.flags.AA
    return response


def _qname(query: dns.message.Message) -> dns.name.Name:
    return query.question[0].name


def _a(owner: dns.name.Name | str, address: str = "198.51.100.66", ttl: int = 300,
       rdclass: str = "IN") -> dns.rrset.RRset:
    if rdclass != "IN":
        return dns.rrset.from_text(owner, ttl, rdclass, "TXT", '"forged"')
    return dns.rrset.from_text(owner, ttl, "IN", "A", address)


def _echo(query: dns.message.Message) -> bytes:
    return query.to_wire()


def _with_rcode(rcode: int) -> Callable[[dns.message.Message], dns.message.Message]:
    def forge(query: dns.message.Message) -> dns.message.Message:
        response = _base(query)
        if rcode > 15:
            response.use_edns(0)
        # the ignore below: dnspython types it Rcode but takes any int: unassigned codes are forged
        response.set_rcode(rcode)  # type: ignore[arg-type]
        return response
    return forge


def _opcode_update(query: dns.message.Message) -> dns.message.Message:
    response = _base(query)
    response.set_opcode(dns.opcode.UPDATE)
    return response


def _opt_in_answer(query: dns.message.Message) -> dns.message.Message:
    response = _base(query)
    opt = dns.rrset.RRset(dns.name.root, dns.rdataclass.RdataClass.make(1232), dns.rdatatype.OPT)
    # dnspython leaves the OPT constructor unannotated
    opt.add(dns.rdtypes.ANY.OPT.OPT(1232, dns.rdatatype.OPT, []), 0)  # type: ignore[no-untyped-call]
    response.answer.append(opt)
    return response


def _ch_class(query: dns.message.Message) -> dns.message.Message:
    response = _base(query)
    response.answer.append(_a(_qname(query), rdclass="CH"))
    return response


def _off_chain(query: dns.message.Message) -> dns.message.Message:
    response = _base(query)
    response.answer.append(_a("www.victim.test."))
    return response


def _cname_loop(query: dns.message.Message) -> dns.message.Message:
    response = _base(query)
    name = _qname(query)
    other = dns.name.Name((b"loop", *name.labels))
    response.answer.append(dns.rrset.from_text(name, 300, "IN", "CNAME", other.to_text()))
    response.answer.append(dns.rrset.from_text(other, 300, "IN", "CNAME", name.to_text()))
    return response


def _huge_ttl(query: dns.message.Message) -> dns.message.Message:
    response = _base(query)
    if query.question[0].rdtype == dns.rdatatype.A:
        response.answer.append(_a(_qname(query), "192.0.2.77", ttl=1 << 31))
    return response


def _no_qr(query: dns.message.Message) -> dns.message.Message:
    response = _base(query)
    response.flags &= ~dns.flags.QR
    return response


FORGED: dict[str, Callable[[dns.message.Message], dns.message.Message | bytes]] = {
    "echo": _echo,
    "no-qr": _no_qr,
    "rcode-11": _with_rcode(11),
    "badvers": _with_rcode(16),
    "opcode-update": _opcode_update,
    "opt-in-answer": _opt_in_answer,
    "ch-class": _ch_class,
    "off-chain": _off_chain,
    "cname-loop": _cname_loop,
    "ttl-2^31": _huge_ttl,
}
"""Named dishonest (but parseable) replies."""
