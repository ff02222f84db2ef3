"""The neutral form of a DNS response that both parsers produce, and its records.

``WireResponse`` holds what a stub or iterative resolver reads from a reply: the header,
the one question (its name in wire form, case as received, for 0x20 checks), and the
three record sections as RRsets. An RRset is a tuple ``(owner, rdtype, rdclass, ttl,
items)`` grouped exactly as dnspython groups records (same owner, type and class; TTL the
minimum of the group; duplicate data dropped; CNAME and SOA keep only the last record).
``owner`` is the presentation text in lower case (dnspython's ``to_text().lower()``).

``items`` are plain values for the types the fast parser reads (see ``value_of``) and
``Record`` objects for any other type (only the dnspython path produces those).
"""

from __future__ import annotations

from typing import Any

from ..records import (
    AAAARecord,
    ARecord,
    CNAMERecord,
    MXRecord,
    NSRecord,
    PTRRecord,
    Record,
    SOARecord,
    SRVRecord,
    TXTRecord,
)

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41
IN = 1
#: Types whose data the fast parser reads; anything else declines to dnspython.
FAST_TYPES = frozenset({A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV})

RRset = tuple[str, int, int, int, tuple[Any, ...]]


class Decline(Exception):
    """The fast parser does not handle this message: parse it with dnspython instead."""


DECLINE = Decline()


class WireResponse:
    """A parsed response (see the module docstring). ``qname`` is None unless there is
    exactly one question. ``opt`` is ``(payload, ttl field)`` of the OPT record, or None."""

    __slots__ = ("additional", "answer", "authority", "flags", "id", "opt", "qclass", "qname", "qtext", "qtype")

    def __init__(self, id: int, flags: int, qname: bytes | None, qtype: int, qclass: int,
                 answer: list[RRset], authority: list[RRset], additional: list[RRset],
                 opt: tuple[int, int] | None) -> None:
        self.id = id
        self.flags = flags
        self.qname = qname
        self.qtype = qtype
        self.qclass = qclass
        self.answer = answer
        self.authority = authority
        self.additional = additional
        self.opt = opt
        #: the question name as lower-case text, when the parser has it at hand (not compared)
        self.qtext: str | None = None

    def rcode(self) -> int:
        """The full rcode (the extended bits of the OPT record included)."""
        rcode = self.flags & 0x000F
        if self.opt is not None:
            rcode |= (self.opt[1] >> 20) & 0xFF0
        return rcode

    def key(self) -> tuple[Any, ...]:
        return (self.id, self.flags, self.qname, self.qtype, self.qclass,
                self.answer, self.authority, self.additional, self.opt)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WireResponse) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(repr(self.key()))

    def __repr__(self) -> str:
        return f"WireResponse{self.key()!r}"


def records(rrset: RRset) -> list[Record]:
    """The records of one RRset, as the library's record types (every one with the set's TTL)."""
    owner, rdtype, _rdclass, ttl, items = rrset
    build = _BUILDERS.get(rdtype)
    if build is not None and not isinstance(items[0], Record):  # the fast parser's plain values
        return _built(build, owner, ttl, items)
    out: list[Record] = []
    for item in items:
        if isinstance(item, Record):
            out.append(item)
        elif build is not None:
            out.append(build(owner, ttl, item))
    return out


def _built(build: Any, owner: str, ttl: int, items: tuple[Any, ...]) -> list[Record]:
    # apart from ``records``: a comprehension there made three closure cells per RRset
    return [build(owner, ttl, item) for item in items]


def soa_record(owner: str, ttl: int, value: tuple[Any, ...]) -> SOARecord:
    return SOARecord(owner, ttl, *value)


_BUILDERS: dict[int, Any] = {
    A: ARecord,
    AAAA: AAAARecord,
    CNAME: CNAMERecord,
    NS: NSRecord,
    PTR: PTRRecord,
    MX: lambda owner, ttl, v: MXRecord(owner, ttl, v[0], v[1]),
    SRV: lambda owner, ttl, v: SRVRecord(owner, ttl, v[0], v[1], v[2], v[3]),
    TXT: TXTRecord,
    SOA: soa_record,
}
