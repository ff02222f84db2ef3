"""Immutable record types: every record has ``name``, ``ttl``, ``rdtype`` and ``text``.

``text`` is the presentation form of the record data, as dig prints it. Typed fields
exist where they are natural (``ARecord.address``, ``MXRecord.exchange``...); any other
type is a ``GenericRecord`` that keeps the presentation text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import dns.name
import dns.rdata
import dns.rdatatype


@dataclass(frozen=True, slots=True)
class Record:
    """Base of every record: ``name`` (absolute, lower case, with the final dot), ``ttl``
    (seconds left; counts down while cached), ``rdtype`` (the type mnemonic) and ``text``
    (the presentation form of the data, as dig prints it). Records are immutable and hashable."""

    name: str
    ttl: int
    rdtype: ClassVar[str] = ""

    @property
    def text(self) -> str:  # pragma: no cover - every subclass overrides it
        """The record data in presentation form, as dig prints it (``"10 mx1.example.com."``)."""
        raise NotImplementedError

    def with_ttl(self, ttl: int) -> Record:
        """A copy of the record with another TTL."""
        return dataclasses.replace(self, ttl=ttl)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data: its fields (bytes decoded as UTF-8, undecodable bytes
        escaped), ``type`` and ``text``."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = [v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v for v in value]
            elif isinstance(value, bytes):
                data[key] = value.decode("utf-8", "backslashreplace")
        data["type"] = self.rdtype
        data["text"] = self.text
        return data

    def __str__(self) -> str:
        return f"{self.name}\t{self.ttl}\tIN\t{self.rdtype}\t{self.text}"


@dataclass(frozen=True, slots=True)
class ARecord(Record):
    """An IPv4 address (``address``, e.g. ``"192.0.2.10"``)."""

    address: str
    rdtype: ClassVar[str] = "A"

    @property
    def text(self) -> str:
        return self.address


@dataclass(frozen=True, slots=True)
class AAAARecord(Record):
    """An IPv6 address (``address``, compressed form, e.g. ``"2001:db8::1"``)."""

    address: str
    rdtype: ClassVar[str] = "AAAA"

    @property
    def text(self) -> str:
        return self.address


# Address records built without the frozen dataclass's ``__init__``, which sets each field
# through ``object.__setattr__`` (three times the cost): the native backend's usual reply
# builds one per name. The same records: equal, hashed and shown alike.
_new_record = object.__new__
_set_name = Record.__dict__["name"].__set__
_set_ttl = Record.__dict__["ttl"].__set__
_AddressRecord = TypeVar("_AddressRecord", ARecord, AAAARecord)


def _direct_builder(cls: type[_AddressRecord], name: str) -> Callable[[str, int, str], _AddressRecord]:
    set_address = cls.__dict__["address"].__set__

    def build(name: str, ttl: int, address: str) -> _AddressRecord:
        record = _new_record(cls)
        _set_name(record, name)
        _set_ttl(record, ttl)
        set_address(record, address)
        return record

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"``{cls.__name__}(name, ttl, address)``, built directly."
    return build


a_record = _direct_builder(ARecord, "a_record")
aaaa_record = _direct_builder(AAAARecord, "aaaa_record")


@dataclass(frozen=True, slots=True)
class CNAMERecord(Record):
    """An alias: ``name`` is another name for ``target``."""

    target: str
    rdtype: ClassVar[str] = "CNAME"

    @property
    def text(self) -> str:
        return self.target


@dataclass(frozen=True, slots=True)
class DNAMERecord(Record):
    """A subtree alias (RFC 6672): every name under ``name`` maps to the same name under ``target``."""

    target: str
    rdtype: ClassVar[str] = "DNAME"

    @property
    def text(self) -> str:
        return self.target


@dataclass(frozen=True, slots=True)
class NSRecord(Record):
    """A name server (``target``) for the zone ``name``."""

    target: str
    rdtype: ClassVar[str] = "NS"

    @property
    def text(self) -> str:
        return self.target


@dataclass(frozen=True, slots=True)
class PTRRecord(Record):
    """A pointer (``target``), typically the host name of a reverse-lookup address."""

    target: str
    rdtype: ClassVar[str] = "PTR"

    @property
    def text(self) -> str:
        return self.target


@dataclass(frozen=True, slots=True)
class MXRecord(Record):
    """A mail exchanger: ``exchange`` with its ``preference`` (lower is preferred)."""

    preference: int
    exchange: str
    rdtype: ClassVar[str] = "MX"

    @property
    def text(self) -> str:
        return f"{self.preference} {self.exchange}"


@dataclass(frozen=True, slots=True)
class SRVRecord(Record):
    """A service location (RFC 2782): ``target`` and ``port``, chosen by ``priority`` then ``weight``."""

    priority: int
    weight: int
    port: int
    target: str
    rdtype: ClassVar[str] = "SRV"

    @property
    def text(self) -> str:
        return f"{self.priority} {self.weight} {self.port} {self.target}"


@dataclass(frozen=True, slots=True)
class TXTRecord(Record):
    """Text: ``strings`` keeps each character-string as bytes, intact (a value may hold several,
    each up to 255 bytes); ``value`` joins them, as SPF and DKIM readers want."""

    strings: tuple[bytes, ...]
    rdtype: ClassVar[str] = "TXT"

    @property
    def value(self) -> bytes:
        """The character-strings joined, as SPF and DKIM readers want them."""
        return b"".join(self.strings)

    @property
    def text(self) -> str:
        return " ".join(quote_character_string(s) for s in self.strings)


@dataclass(frozen=True, slots=True)
class SOARecord(Record):
    """Start of authority: the zone's primary server ``mname``, contact ``rname``, ``serial`` and
    timers; ``negative_ttl`` is how long a negative answer from the zone holds (RFC 2308)."""

    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int
    rdtype: ClassVar[str] = "SOA"

    @property
    def text(self) -> str:
        return (
            f"{self.mname} {self.rname} {self.serial} {self.refresh} {self.retry} "
            f"{self.expire} {self.minimum}"
        )

    @property
    def negative_ttl(self) -> int:
        """RFC 2308 §5: the lesser of the SOA's own TTL and its MINIMUM field."""
        return min(self.ttl, self.minimum)


@dataclass(frozen=True, slots=True)
class CAARecord(Record):
    """Certification authority authorisation (RFC 8659): ``flags``, ``tag`` (``"issue"``...) and raw ``value``."""

    flags: int
    tag: str
    value: bytes
    rdtype: ClassVar[str] = "CAA"

    @property
    def text(self) -> str:
        return f"{self.flags} {self.tag} {quote_character_string(self.value)}"


@dataclass(frozen=True, slots=True)
class NAPTRRecord(Record):
    """Naming authority pointer (RFC 3403): ``order``, ``preference``, ``flags``, ``service``,
    ``regexp`` (bytes, as on the wire) and ``replacement``."""

    order: int
    preference: int
    flags: bytes
    service: bytes
    regexp: bytes
    replacement: str
    rdtype: ClassVar[str] = "NAPTR"

    @property
    def text(self) -> str:
        strings = " ".join(quote_character_string(s) for s in (self.flags, self.service, self.regexp))
        return f"{self.order} {self.preference} {strings} {self.replacement}"


@dataclass(frozen=True, slots=True)
class GenericRecord(Record):
    """Any other type: the type name and the presentation text of its data."""

    type_name: str
    data: str

    # the ignore below: a property: a generic record's type is per instance, not per class
    @property
    def rdtype(self) -> str:  # type: ignore[override]
        """The type mnemonic (``"HTTPS"``, ``"TLSA"``...)."""
        return self.type_name

    @property
    def text(self) -> str:
        return self.data

    def to_dict(self) -> dict[str, Any]:
        """``name``, ``ttl``, ``type`` and ``text``."""
        return {"name": self.name, "ttl": self.ttl, "type": self.type_name, "text": self.data}


def quote_character_string(value: bytes) -> str:
    """RFC 1035 §5.1 quoting: printable ASCII as is, '"' and '\\' escaped, the rest as \\DDD."""
    out = ['"']
    for byte in value:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def from_rdata(owner: str, ttl: int, rdata: dns.rdata.Rdata) -> Record:
    """Convert one dnspython rdata into our record type (owner already normalised)."""
    rdtype = rdata.rdtype
    T = dns.rdatatype
    r: Any = rdata  # dnspython's Rdata has no per-type fields: the rdtype says which there are
    if rdtype == T.A:
        return ARecord(owner, ttl, r.address)
    if rdtype == T.AAAA:
        return AAAARecord(owner, ttl, r.address)
    if rdtype in (T.CNAME, T.NS, T.PTR, T.DNAME):
        target = _name_text(r.target)
        cls = {T.CNAME: CNAMERecord, T.NS: NSRecord, T.PTR: PTRRecord, T.DNAME: DNAMERecord}[rdtype]
        return cls(owner, ttl, target)
    if rdtype == T.MX:
        return MXRecord(owner, ttl, r.preference, _name_text(r.exchange))
    if rdtype == T.SRV:
        return SRVRecord(owner, ttl, r.priority, r.weight, r.port, _name_text(r.target))
    if rdtype == T.TXT:
        return TXTRecord(owner, ttl, tuple(r.strings))
    if rdtype == T.SOA:
        return SOARecord(
            owner, ttl, _name_text(r.mname), _name_text(r.rname),
            r.serial, r.refresh, r.retry, r.expire, r.minimum,
        )
    if rdtype == T.CAA:
        return CAARecord(owner, ttl, r.flags, r.tag.decode("ascii", "replace"), r.value)
    if rdtype == T.NAPTR:
        return NAPTRRecord(
            owner, ttl, r.order, r.preference, r.flags, r.service, r.regexp, _name_text(r.replacement)
        )
    return GenericRecord(owner, ttl, T.to_text(rdtype), rdata.to_text())


def _name_text(name: dns.name.Name) -> str:
    text: str = name.to_text().lower()
    return text if text.endswith(".") else text + "."
