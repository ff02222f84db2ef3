"""Turn a c-ares ``ares_dns_record_t`` into our records, answers and negative answers.

This reads the parsed message through pycares's cffi module (``pycares._cares``),
because pycares's public ``Channel.query`` loses three things we need: it joins the
character-strings of a TXT record into one, it drops the whole message (and so the
SOA of the authority section) when the rcode is NXDOMAIN or the answer is empty, and
it reads CAA values up to the first NUL byte. Everything here runs inside the c-ares
callback, while the message is alive; nothing keeps a pointer past it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
from pycares import _ffi as ffi  # type: ignore[attr-defined]
from pycares import _lib as lib  # type: ignore[attr-defined]

from ..answer import Answer
from ..errors import NegativeAnswer, NoAnswer
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
_CNAME = lib.ARES_REC_TYPE_CNAME
_SOA = lib.ARES_REC_TYPE_SOA

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


def _owner(rr: Any, qname_raw: bytes, qname: str) -> str:
    raw = _string(_rr_name(rr))
    return qname if raw == qname_raw else dns_name(raw)


def authority_soa(dnsrec: Any) -> SOARecord | None:
    """The SOA of the authority section (the negative-caching SOA), if any."""
    for i in range(_rr_cnt(dnsrec, _AUTHORITY)):
        rr = _rr_get(dnsrec, _AUTHORITY, i)
        if _rr_type(rr) == _SOA:
            return _soa(rr, dns_name(_string(_rr_name(rr))), _rr_ttl(rr))
    return None


def negative(cls: type[NegativeAnswer], dnsrec: Any, name: str, rdtype: str) -> NegativeAnswer:
    """``NXDomain``/``NoAnswer`` with the RFC 2308 negative TTL of the authority SOA."""
    soa = authority_soa(dnsrec) if dnsrec != _NULL else None
    return cls(
        name=name, rdtype=rdtype, source=SOURCE,
        ttl=soa.negative_ttl if soa is not None else None, soa=soa,
    )


def to_answer(dnsrec: Any, name: str, rdtype: str, code: int) -> Answer:
    """The answer section as an ``Answer`` (CNAME chain followed from ``name``).

    Raises ``NoAnswer`` when the answer section holds only a CNAME chain whose end
    has no record of the type (NOERROR/NODATA at the canonical name).
    """
    qname_raw = name[:-1].encode("ascii")
    convert = _CONVERTERS[code]
    records: list[Record] = []
    cnames: dict[str, CNAMERecord] | None = None
    for i in range(_rr_cnt(dnsrec, _ANSWER)):
        rr = _rr_get(dnsrec, _ANSWER, i)
        rr_type = _rr_type(rr)
        if rr_type == code:
            records.append(convert(rr, _owner(rr, qname_raw, name), _rr_ttl(rr)))
        elif rr_type == _CNAME:
            cname: Any = _cname(rr, _owner(rr, qname_raw, name), _rr_ttl(rr))
            if cnames is None:
                cnames = {}
            cnames[cname.name] = cname
        # Anything else (DNAME, RRSIG...) is not part of the answer we return.
    if not cnames:
        if records:
            return Answer(name, rdtype, records, SOURCE)
        raise negative(NoAnswer, dnsrec, name, rdtype)
    chain: list[CNAMERecord] = []
    target = name
    while target in cnames and len(chain) < 32:
        link = cnames.pop(target)
        chain.append(link)
        target = link.target
    found = [r for r in records if r.name == target]
    if not found:
        if not records:
            raise negative(NoAnswer, dnsrec, name, rdtype)
        # A server that names records without the chain leading to them: keep them.
        found, target = records, records[0].name
    return Answer(name, rdtype, found, SOURCE, cname_chain=chain, canonical_name=target)
