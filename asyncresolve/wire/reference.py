"""The reference parser: dnspython's ``from_wire``, turned into the same ``WireResponse``.

This is the general path (every message dnspython reads) and the oracle of the fast
parser's differential tests. Types the fast parser reads become the same plain values;
any other type becomes the library's ``Record`` (``records.from_rdata``).
"""

from __future__ import annotations

from typing import Any

import dns.message
import dns.name
import dns.rdata
import dns.rrset

from ..records import from_rdata
from .message import FAST_TYPES, IN, RRset, WireResponse

_classes_loaded = False


def load_rdata_classes() -> None:
    """Make dnspython's reading of class IN records independent of what it read before.

    dnspython picks an rdata class on first sight of each (class, type) and, when the first
    one seen is, say, SRV in class ANY, caches GenericRdata under the ANY class: every later
    SRV of class IN then parses as generic data. The types with a class-IN implementation
    (``dns.rdtypes.IN``) are registered here first; the native backends call this when they
    are built and the reference parser before its first parse (not at import: it costs
    tens of milliseconds).
    """
    global _classes_loaded
    if _classes_loaded:
        return
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.IN

    for name in dns.rdtypes.IN.__all__:
        # dnspython leaves get_rdata_class unannotated
        dns.rdata.get_rdata_class(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN, dns.rdatatype.from_text(name.replace("_", "-")))
    _classes_loaded = True


def _text(name: dns.name.Name) -> str:
    return name.to_text().lower()


def value_of(rdata: dns.rdata.Rdata) -> Any:
    """The fast parser's value for one rdata of a ``FAST_TYPES`` type, class IN."""
    rdtype = rdata.rdtype
    r: Any = rdata
    if rdtype in (1, 28):
        return r.address
    if rdtype in (2, 5, 12):
        return _text(r.target)
    if rdtype == 6:
        return (_text(r.mname), _text(r.rname), r.serial, r.refresh, r.retry, r.expire, r.minimum)
    if rdtype == 15:
        return (r.preference, _text(r.exchange))
    if rdtype == 33:
        return (r.priority, r.weight, r.port, _text(r.target))
    if rdtype == 16:
        return tuple(r.strings)
    raise ValueError(rdtype)


def _rrset(rrset: dns.rrset.RRset) -> RRset:
    owner = _text(rrset.name)
    ttl = rrset.ttl
    if rrset.rdclass == IN and rrset.rdtype in FAST_TYPES:
        items = tuple(value_of(rd) for rd in rrset)
    else:
        items = tuple(from_rdata(owner, ttl, rd) for rd in rrset)
    return (owner, int(rrset.rdtype), int(rrset.rdclass), ttl, items)


def from_message(message: dns.message.Message) -> WireResponse:
    """The ``WireResponse`` of a dnspython message."""
    if len(message.question) == 1:
        q = message.question[0]
        qname: bytes | None = q.name.to_wire()
        qtype, qclass = int(q.rdtype), int(q.rdclass)
    else:
        qname, qtype, qclass = None, 0, 0
    opt = None
    if message.opt is not None:
        opt = (int(message.opt.rdclass), int(message.opt.ttl))
    return WireResponse(
        message.id, int(message.flags), qname, qtype, qclass,
        [_rrset(r) for r in message.answer],
        [_rrset(r) for r in message.authority],
        [_rrset(r) for r in message.additional],
        opt,
    )


def parse(data: bytes) -> WireResponse:
    """dnspython's reading of ``data`` (trailing bytes ignored); raises dnspython's errors."""
    if not _classes_loaded:
        load_rdata_classes()
    return from_message(dns.message.from_wire(data, ignore_trailing=True))
