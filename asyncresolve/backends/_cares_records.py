"""Turn a c-ares ``ares_dns_record_t`` into our records, answers and negative answers.

This reads the parsed message through pycares's cffi module (``pycares._cares``),
because pycares's public ``Channel.query`` loses three things we need: it joins the
character-strings of a TXT record into one, it drops the whole message (and so the
SOA of the authority section) when the rcode is NXDOMAIN or the answer is empty, and
it reads CAA values up to the first NUL byte. Everything here runs inside the c-ares
callback, while the message is alive; nothing keeps a pointer past it.

c-ares matches a reply to its query by ID and question (and, with 0x20, the exact case
of the name) but hands over anything else it parsed: a query echoed back (QR clear),
another opcode, rcodes it does not know (reserved 11, BADVERS...) reported as success,
records of another class or owner. ``check_header`` and ``to_answer`` refuse those as
``ServFail`` (never a cacheable ``NoAnswer``), keep only records of the query name and
its CNAME chain, fail a CNAME loop, and read TTLs of 2^31 or more as 0 (RFC 2181 §8).
"""

from __future__ import annotations

import ctypes
import socket
from collections.abc import Callable
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
from pycares import _cares as _cares_module

# pycares's private cffi layer (pinned and contract-tested) is not re-exported by its typed API
from pycares import _ffi as ffi  # type: ignore[attr-defined]
from pycares import _lib as lib  # type: ignore[attr-defined]

from ..answer import Answer
from ..errors import NegativeAnswer, NoAnswer, ServFail
from ..records import (
    AAAARecord,
    ARecord,
    CAARecord,
    CNAMERecord,
    GenericRecord,
    MXRecord,
    NAPTRRecord,
    NSRecord,
    PTRRecord,
    Record,
    SOARecord,
    SRVRecord,
    TXTRecord,
)

SOURCE = "cares"

#: Record types c-ares 1.34 decodes, by mnemonic, with their type codes.
TYPE_CODES: dict[str, int] = {
    "A": lib.ARES_REC_TYPE_A,
    "AAAA": lib.ARES_REC_TYPE_AAAA,
    "CNAME": lib.ARES_REC_TYPE_CNAME,
    "MX": lib.ARES_REC_TYPE_MX,
    "NS": lib.ARES_REC_TYPE_NS,
    "PTR": lib.ARES_REC_TYPE_PTR,
    "SOA": lib.ARES_REC_TYPE_SOA,
    "SRV": lib.ARES_REC_TYPE_SRV,
    "TXT": lib.ARES_REC_TYPE_TXT,
    "CAA": lib.ARES_REC_TYPE_CAA,
    "NAPTR": lib.ARES_REC_TYPE_NAPTR,
    "HTTPS": lib.ARES_REC_TYPE_HTTPS,
    "TLSA": lib.ARES_REC_TYPE_TLSA,
    "URI": lib.ARES_REC_TYPE_URI,
}

_ANSWER = lib.ARES_SECTION_ANSWER
_AUTHORITY = lib.ARES_SECTION_AUTHORITY
_NULL = ffi.NULL
_string = ffi.string
_buffer = ffi.buffer
_rr_cnt = lib.ares_dns_record_rr_cnt
_rr_get = lib.ares_dns_record_rr_get_const
_rr_name = lib.ares_dns_rr_get_name
_rr_type = lib.ares_dns_rr_get_type
_rr_ttl = lib.ares_dns_rr_get_ttl
_get_str = lib.ares_dns_rr_get_str
_get_u8 = lib.ares_dns_rr_get_u8
_get_u16 = lib.ares_dns_rr_get_u16
_get_u32 = lib.ares_dns_rr_get_u32
_rr_class = lib.ares_dns_rr_get_class
_CNAME = lib.ARES_REC_TYPE_CNAME
_SOA = lib.ARES_REC_TYPE_SOA
_NS = lib.ARES_REC_TYPE_NS
_OPT = 41
_CLASS_IN = lib.ARES_CLASS_IN
_MAX_CHAIN = 32
_TTL_LIMIT = 1 << 31  # RFC 2181 §8: a TTL with the top bit set is read as 0

# The message header accessors c-ares exports but pycares's cffi module does not declare:
# read through ctypes from the same shared object (so the same c-ares, already loaded).
try:
    _header_lib = ctypes.CDLL(_cares_module.__file__)
    _get_flags = _header_lib.ares_dns_record_get_flags
    _get_flags.argtypes, _get_flags.restype = [ctypes.c_void_p], ctypes.c_ushort
    _get_opcode = _header_lib.ares_dns_record_get_opcode
    _get_opcode.argtypes, _get_opcode.restype = [ctypes.c_void_p], ctypes.c_int
    _get_rcode = _header_lib.ares_dns_record_get_rcode
    _get_rcode.argtypes, _get_rcode.restype = [ctypes.c_void_p], ctypes.c_int
    HEADER_CHECKS = True
except (OSError, AttributeError):  # pragma: no cover - a build that does not export them
    HEADER_CHECKS = False
_FLAG_QR = lib.ARES_FLAG_QR
_OPCODE_QUERY = lib.ARES_OPCODE_QUERY
_RCODE_NAMES = {
    lib.ARES_RCODE_NOERROR: "NOERROR", lib.ARES_RCODE_NXDOMAIN: "NXDOMAIN",
    lib.ARES_RCODE_FORMERR: "FORMERR", lib.ARES_RCODE_SERVFAIL: "SERVFAIL",
    lib.ARES_RCODE_NOTIMP: "NOTIMP", lib.ARES_RCODE_REFUSED: "REFUSED", 16: "BADVERS",
}
_USABLE_RCODES = (lib.ARES_RCODE_NOERROR, lib.ARES_RCODE_NXDOMAIN)

# Owner names and targets repeat (every record of an RRset, every SOA of a zone):
# decode each distinct wire spelling once.
_NAME_MEMO_LIMIT = 65_536
_name_memo: dict[bytes, str] = {}


def dns_name(raw: bytes) -> str:
    """c-ares presentation name (no trailing dot, any case) -> ``"lower.case."``."""
    try:
        return _name_memo[raw]
    except KeyError:
        pass
    text = raw.decode("ascii", "backslashreplace").lower()
    text = "." if text in ("", ".") else (text if text.endswith(".") else text + ".")
    if len(_name_memo) >= _NAME_MEMO_LIMIT:
        _name_memo.clear()
    _name_memo[raw] = text
    return text


def _str(rr: Any, key: int) -> bytes:
    value = _get_str(rr, key)
    return _string(value) if value != _NULL else b""


def _name(rr: Any, key: int) -> str:
    return dns_name(_str(rr, key))


def _bin(rr: Any, key: int) -> bytes:
    length = ffi.new("size_t *")
    value = lib.ares_dns_rr_get_bin(rr, key, length)
    return _buffer(value, length[0])[:] if value != _NULL else b""


def _a(rr: Any, owner: str, ttl: int) -> Record:
    raw = _buffer(lib.ares_dns_rr_get_addr(rr, lib.ARES_RR_A_ADDR), 4)[:]
    return ARecord(owner, ttl, socket.inet_ntoa(raw))


def _aaaa(rr: Any, owner: str, ttl: int) -> Record:
    raw = _buffer(lib.ares_dns_rr_get_addr6(rr, lib.ARES_RR_AAAA_ADDR), 16)[:]
    return AAAARecord(owner, ttl, socket.inet_ntop(socket.AF_INET6, raw))


def _cname(rr: Any, owner: str, ttl: int) -> Record:
    return CNAMERecord(owner, ttl, _name(rr, lib.ARES_RR_CNAME_CNAME))


def _ns(rr: Any, owner: str, ttl: int) -> Record:
    return NSRecord(owner, ttl, _name(rr, lib.ARES_RR_NS_NSDNAME))


def _ptr(rr: Any, owner: str, ttl: int) -> Record:
    return PTRRecord(owner, ttl, _name(rr, lib.ARES_RR_PTR_DNAME))


def _mx(rr: Any, owner: str, ttl: int) -> Record:
    return MXRecord(owner, ttl, _get_u16(rr, lib.ARES_RR_MX_PREFERENCE), _name(rr, lib.ARES_RR_MX_EXCHANGE))


def _srv(rr: Any, owner: str, ttl: int) -> Record:
    return SRVRecord(
        owner, ttl,
        _get_u16(rr, lib.ARES_RR_SRV_PRIORITY),
        _get_u16(rr, lib.ARES_RR_SRV_WEIGHT),
        _get_u16(rr, lib.ARES_RR_SRV_PORT),
        _name(rr, lib.ARES_RR_SRV_TARGET),
    )


def _txt(rr: Any, owner: str, ttl: int) -> Record:
    key = lib.ARES_RR_TXT_DATA
    length = ffi.new("size_t *")
    strings = []
    for i in range(lib.ares_dns_rr_get_abin_cnt(rr, key)):
        data = lib.ares_dns_rr_get_abin(rr, key, i, length)
        strings.append(_buffer(data, length[0])[:] if data != _NULL else b"")
    return TXTRecord(owner, ttl, tuple(strings))


def _soa(rr: Any, owner: str, ttl: int) -> SOARecord:
    return SOARecord(
        owner, ttl,
        _name(rr, lib.ARES_RR_SOA_MNAME),
        _name(rr, lib.ARES_RR_SOA_RNAME),
        _get_u32(rr, lib.ARES_RR_SOA_SERIAL),
        _get_u32(rr, lib.ARES_RR_SOA_REFRESH),
        _get_u32(rr, lib.ARES_RR_SOA_RETRY),
        _get_u32(rr, lib.ARES_RR_SOA_EXPIRE),
        _get_u32(rr, lib.ARES_RR_SOA_MINIMUM),
    )


def _caa(rr: Any, owner: str, ttl: int) -> Record:
    # c-ares names the first octet "critical" but keeps all of it: it is the flags field.
    return CAARecord(
        owner, ttl,
        _get_u8(rr, lib.ARES_RR_CAA_CRITICAL),
        _str(rr, lib.ARES_RR_CAA_TAG).decode("ascii", "replace"),
        _bin(rr, lib.ARES_RR_CAA_VALUE),
    )


def _naptr(rr: Any, owner: str, ttl: int) -> Record:
    return NAPTRRecord(
        owner, ttl,
        _get_u16(rr, lib.ARES_RR_NAPTR_ORDER),
        _get_u16(rr, lib.ARES_RR_NAPTR_PREFERENCE),
        _str(rr, lib.ARES_RR_NAPTR_FLAGS),
        _str(rr, lib.ARES_RR_NAPTR_SERVICES),
        _str(rr, lib.ARES_RR_NAPTR_REGEXP),
        _name(rr, lib.ARES_RR_NAPTR_REPLACEMENT),
    )


def _generic(rdtype: dns.rdatatype.RdataType, wire: bytes, owner: str, ttl: int) -> Record:
    # dnspython writes the presentation text, so it matches the dnspython backend exactly.
    rdata = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, 0, len(wire))
    return GenericRecord(owner, ttl, dns.rdatatype.to_text(rdtype), rdata.to_text())


def _wire_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out.append(len(raw))
            out += raw
    out.append(0)
    return bytes(out)


def _https(rr: Any, owner: str, ttl: int) -> Record:
    key = lib.ARES_RR_HTTPS_PARAMS
    wire = bytearray(_get_u16(rr, lib.ARES_RR_HTTPS_PRIORITY).to_bytes(2, "big"))
    wire += _wire_name(_name(rr, lib.ARES_RR_HTTPS_TARGET))
    value = ffi.new("unsigned char **")
    length = ffi.new("size_t *")
    for i in range(lib.ares_dns_rr_get_opt_cnt(rr, key)):
        param = lib.ares_dns_rr_get_opt(rr, key, i, value, length)
        data = _buffer(value[0], length[0])[:] if value[0] != _NULL else b""
        wire += param.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data
    return _generic(dns.rdatatype.HTTPS, bytes(wire), owner, ttl)


def _tlsa(rr: Any, owner: str, ttl: int) -> Record:
    wire = bytes((
        _get_u8(rr, lib.ARES_RR_TLSA_CERT_USAGE),
        _get_u8(rr, lib.ARES_RR_TLSA_SELECTOR),
        _get_u8(rr, lib.ARES_RR_TLSA_MATCH),
    )) + _bin(rr, lib.ARES_RR_TLSA_DATA)
    return _generic(dns.rdatatype.TLSA, wire, owner, ttl)


def _uri(rr: Any, owner: str, ttl: int) -> Record:
    wire = (
        _get_u16(rr, lib.ARES_RR_URI_PRIORITY).to_bytes(2, "big")
        + _get_u16(rr, lib.ARES_RR_URI_WEIGHT).to_bytes(2, "big")
        + _str(rr, lib.ARES_RR_URI_TARGET)
    )
    return _generic(dns.rdatatype.URI, wire, owner, ttl)


_CONVERTERS: dict[int, Callable[[Any, str, int], Record]] = {
    lib.ARES_REC_TYPE_A: _a,
    lib.ARES_REC_TYPE_AAAA: _aaaa,
    lib.ARES_REC_TYPE_CNAME: _cname,
    lib.ARES_REC_TYPE_NS: _ns,
    lib.ARES_REC_TYPE_PTR: _ptr,
    lib.ARES_REC_TYPE_MX: _mx,
    lib.ARES_REC_TYPE_SRV: _srv,
    lib.ARES_REC_TYPE_TXT: _txt,
    lib.ARES_REC_TYPE_SOA: _soa,
    lib.ARES_REC_TYPE_CAA: _caa,
    lib.ARES_REC_TYPE_NAPTR: _naptr,
    lib.ARES_REC_TYPE_HTTPS: _https,
    lib.ARES_REC_TYPE_TLSA: _tlsa,
    lib.ARES_REC_TYPE_URI: _uri,
}


def _ttl(rr: Any) -> int:
    ttl: int = _rr_ttl(rr)
    return ttl if ttl < _TTL_LIMIT else 0


def _bogus(what: str, name: str, rdtype: str, rcode: str | None = None) -> ServFail:
    return ServFail(
        f"unusable reply for {name} {rdtype}: {what}", name=name, rdtype=rdtype, source=SOURCE, rcode=rcode,
    )


def check_header(dnsrec: Any, name: str, rdtype: str) -> None:
    """Raise ``ServFail`` unless the message is a QUERY response with NOERROR or NXDOMAIN.

    (Skipped, ``HEADER_CHECKS`` False, where pycares's c-ares does not export the header
    accessors; the record checks of ``to_answer`` still apply.)
    """
    if not HEADER_CHECKS:
        return
    address = int(ffi.cast("uintptr_t", dnsrec))
    if not _get_flags(address) & _FLAG_QR:
        raise _bogus("the query came back (QR clear)", name, rdtype)
    opcode = _get_opcode(address)
    if opcode != _OPCODE_QUERY:
        raise _bogus(f"opcode {opcode}, not QUERY", name, rdtype)
    rcode = _get_rcode(address)
    if rcode not in _USABLE_RCODES:
        text = _RCODE_NAMES.get(rcode, f"RCODE{rcode}")
        raise _bogus(f"rcode {text}", name, rdtype, text)


def _check_rr(rr: Any, name: str, rdtype: str) -> None:
    """Raise ``ServFail`` for an answer-section record no honest server sends to an IN query."""
    if _rr_type(rr) == _OPT:
        raise _bogus("an OPT record in the answer section", name, rdtype, "FORMERR")
    rr_class = _rr_class(rr)
    if rr_class != _CLASS_IN:
        raise _bogus(f"a record of class {rr_class} in the answer section", name, rdtype, "FORMERR")


def _owner(rr: Any, qname_raw: bytes, qname: str) -> str:
    raw = _string(_rr_name(rr))
    # under 0x20 the owner echoes the query's random case: compare without case
    return qname if raw == qname_raw or raw.lower() == qname_raw else dns_name(raw)


def authority_soa(dnsrec: Any) -> SOARecord | None:
    """The SOA of the authority section (the negative-caching SOA), if any."""
    for i in range(_rr_cnt(dnsrec, _AUTHORITY)):
        rr = _rr_get(dnsrec, _AUTHORITY, i)
        if _rr_type(rr) == _SOA and _rr_class(rr) == _CLASS_IN:
            return _soa(rr, dns_name(_string(_rr_name(rr))), _ttl(rr))
    return None


def _has_ns_authority(dnsrec: Any) -> bool:
    if dnsrec == _NULL:
        return False
    return any(
        _rr_type(_rr_get(dnsrec, _AUTHORITY, i)) == _NS for i in range(_rr_cnt(dnsrec, _AUTHORITY))
    )


def negative(cls: type[NegativeAnswer], dnsrec: Any, name: str, rdtype: str) -> NegativeAnswer:
    """``NXDomain``/``NoAnswer`` with the RFC 2308 negative TTL of the authority SOA.

    Raises ``ServFail`` instead when the message is not an honest response (see
    ``check_header``): only those are negative answers worth caching.
    """
    if dnsrec != _NULL:
        check_header(dnsrec, name, rdtype)
    soa = authority_soa(dnsrec) if dnsrec != _NULL else None
    if soa is None and cls is NoAnswer and _has_ns_authority(dnsrec):
        # a referral (a server that does not recurse, or a lame one): not "no such data"
        raise _bogus("a referral, not an answer (the server does not recurse)", name, rdtype)
    return cls(
        name=name, rdtype=rdtype, source=SOURCE,
        ttl=soa.negative_ttl if soa is not None else None, soa=soa,
    )


def to_answer(dnsrec: Any, name: str, rdtype: str, code: int) -> Answer:
    """The answer section as an ``Answer`` (CNAME chain followed from ``name``).

    Only records owned by ``name`` or by a name on its CNAME chain are returned.
    Raises ``NoAnswer`` when the answer section holds only a CNAME chain whose end
    has no record of the type (NOERROR/NODATA at the canonical name), and ``ServFail``
    for a reply that is not an honest answer (see ``check_header``), a CNAME loop, or
    records of the type that belong to no name on the chain.
    """
    check_header(dnsrec, name, rdtype)
    qname_raw = name[:-1].encode("ascii")
    convert = _CONVERTERS[code]
    records: list[Record] = []
    cnames: dict[str, CNAMERecord] | None = None
    for i in range(_rr_cnt(dnsrec, _ANSWER)):
        rr = _rr_get(dnsrec, _ANSWER, i)
        rr_type = _rr_type(rr)
        if rr_type == code and _rr_class(rr) == _CLASS_IN:
            records.append(convert(rr, _owner(rr, qname_raw, name), _ttl(rr)))
        elif rr_type == _CNAME and _rr_class(rr) == _CLASS_IN:
            cname: Any = _cname(rr, _owner(rr, qname_raw, name), _ttl(rr))
            if cnames is None:
                cnames = {}
            cnames.setdefault(cname.name, cname)
        else:
            # Anything else (DNAME, RRSIG...) is not part of the answer we return.
            _check_rr(rr, name, rdtype)
    chain: list[CNAMERecord] = []
    target = name
    if cnames:
        seen = {name}
        while target in cnames:
            link = cnames[target]
            chain.append(link)
            target = link.target
            if target in seen:
                raise _bogus(f"CNAME loop at {target}", name, rdtype, "SERVFAIL")
            if len(chain) > _MAX_CHAIN:
                raise _bogus(f"CNAME chain longer than {_MAX_CHAIN}", name, rdtype, "SERVFAIL")
            seen.add(target)
    found = [r for r in records if r.name == target]
    if not found:
        if records:
            owners = ", ".join(sorted({r.name for r in records})[:3])
            raise _bogus(f"{rdtype} records of {owners}, not of {target}", name, rdtype)
        raise negative(NoAnswer, dnsrec, name, rdtype)
    if not chain:
        return Answer(name, rdtype, found, SOURCE)
    return Answer(name, rdtype, found, SOURCE, cname_chain=chain, canonical_name=target)
