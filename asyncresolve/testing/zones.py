"""Zone data for the test servers: parsing, indexing and the authoritative lookup.

Zones are parsed by :func:`dns.zone.from_text` with absolute names
(``relativize=False``).  :class:`IndexedZone` precomputes what the lookup
algorithm of RFC 1034 section 4.3.2 needs (which names exist, including empty
non-terminals; where the zone cuts are) so that a query costs a few dict
lookups.  :meth:`IndexedZone.lookup` returns a :class:`Lookup` describing the
outcome; assembling the response message is :mod:`.responder`'s job.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

IN = dns.rdataclass.IN
SOA = dns.rdatatype.SOA
NS = dns.rdatatype.NS
CNAME = dns.rdatatype.CNAME
DNAME = dns.rdatatype.DNAME
DS = dns.rdatatype.DS
ANY = dns.rdatatype.ANY
WILDCARD = b"*"

ZoneSource = str | dns.zone.Zone
"""A zone given by the user: zone-file text or an already parsed dnspython zone."""


def to_name(name: str | dns.name.Name) -> dns.name.Name:
    """Return *name* as an absolute :class:`dns.name.Name` (a missing final dot is added)."""
    if isinstance(name, dns.name.Name):
        return name if name.is_absolute() else name.concatenate(dns.name.root)
    return dns.name.from_text(name)


def parse_zone(source: ZoneSource, origin: str | dns.name.Name) -> dns.zone.Zone:
    """Parse zone-file text for *origin* with absolute names.

    The apex SOA and NS are not required here (the lab adds them); the
    server checks them with :meth:`dns.zone.Zone.check_origin`.
    A :class:`dns.zone.Zone` is returned as is when it uses absolute names.
    """
    name = to_name(origin)
    if isinstance(source, dns.zone.Zone):
        if source.origin != name:
            raise ValueError(f"zone origin {source.origin} does not match {name}")
        if source.relativize:
            return dns.zone.from_text(source.to_text(), origin=name, relativize=False)
        return source
    text = _dedent_zone_text(source)
    return dns.zone.from_text(text, origin=name, relativize=False, check_origin=False)


def _dedent_zone_text(text: str) -> str:
    """Strip the common indentation of a triple-quoted zone.

    In a zone file a line that starts with blanks reuses the previous owner
    name, so indented zone text written inline in Python would lose every owner.
    """
    lines = text.splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines) + "\n"


class Outcome(enum.Enum):
    """What an authoritative lookup found."""

    ANSWER = "answer"
    CNAME = "cname"
    DNAME = "dname"
    REFERRAL = "referral"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    YXDOMAIN = "yxdomain"


@dataclass
class Lookup:
    """The result of :meth:`IndexedZone.lookup`.

    ``answer`` holds answer-section RRsets, ``authority`` authority-section
    ones (NS of a referral, SOA of a negative answer), ``additional`` the glue
    of a referral; ``target`` is the name to continue with after a CNAME or
    DNAME.
    """

    outcome: Outcome
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    target: dns.name.Name | None = None


class IndexedZone:
    """A parsed zone plus the indexes the authoritative lookup needs.

    The zone must not be modified afterwards (the indexes would go stale).
    """

    def __init__(self, zone: dns.zone.Zone) -> None:
        if zone.relativize:
            raise ValueError("IndexedZone needs a zone parsed with relativize=False")
        zone.check_origin()
        assert zone.origin is not None
        self.zone = zone
        self.origin: dns.name.Name = zone.origin
        self.nodes: dict[dns.name.Name, dns.node.Node] = dict(zone.nodes)
        self.existing: set[dns.name.Name] = set()
        for name in self.nodes:
            while name not in self.existing and name.is_subdomain(self.origin):
                self.existing.add(name)
                if name == self.origin:
                    break
                name = name.parent()
        soa = self.nodes[self.origin].get_rdataset(IN, SOA)
        assert soa is not None
        minimum = soa[0].minimum
        # RFC 2308 section 3: the SOA in a negative answer carries min(TTL, MINIMUM).
        self.negative_soa = dns.rrset.from_rdata_list(self.origin, min(soa.ttl, minimum), list(soa))
        self._rrsets: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset] = {}

    def __repr__(self) -> str:
        return f"<IndexedZone {self.origin}>"

    def rrset(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        """The RRset at *name* (any node, including glue below a cut), cached."""
        key = (name, rdtype)
        cached = self._rrsets.get(key)
        if cached is not None:
            return cached
        node = self.nodes.get(name)
        rdataset = node.get_rdataset(IN, rdtype) if node is not None else None
        if rdataset is None:
            return None
        rrset = _as_rrset(name, rdataset)
        self._rrsets[key] = rrset
        return rrset

    def addresses(self, name: dns.name.Name) -> list[dns.rrset.RRset]:
        """A and AAAA RRsets at *name* in this zone's data (used for glue and additional data)."""
        found = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            rrset = self.rrset(name, rdtype)
            if rrset is not None:
                found.append(rrset)
        return found

    def lookup(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> Lookup:
        """Run the authoritative part of the RFC 1034 algorithm for *qname*/*qtype*.

        Handles zone cuts (referral with in-bailiwick glue), DNAME (RFC 6672),
        CNAME, empty non-terminals and wildcards (RFC 4592).
        """
        origin_depth = len(self.origin)
        closest = self.origin
        for depth in range(origin_depth, len(qname) + 1):
            name = qname.split(depth)[1]
            if name not in self.existing:
                break
            closest = name
            node = self.nodes.get(name)
            if node is None:
                continue
            is_cut = name != self.origin and node.get_rdataset(IN, NS) is not None
            if is_cut and not (name == qname and qtype == DS):
                return self._referral(name)
            if name != qname:
                dname = node.get_rdataset(IN, DNAME)
                if dname is not None:
                    return self._dname(qname, name, dname)
        else:
            node = self.nodes.get(qname)
            if node is None:  # empty non-terminal: the name exists, without data
                return Lookup(Outcome.NODATA, authority=[self.negative_soa])
            return self._from_node(qname, qname, node, qtype)
        wildcard = dns.name.Name((WILDCARD, *closest.labels))
        node = self.nodes.get(wildcard)
        if node is not None:
            return self._from_node(qname, wildcard, node, qtype)
        return Lookup(Outcome.NXDOMAIN, authority=[self.negative_soa])

    def _from_node(
        self, qname: dns.name.Name, owner: dns.name.Name, node: dns.node.Node, qtype: dns.rdatatype.RdataType
    ) -> Lookup:
        synthesized = owner != qname

        def rrset_of(rdtype: dns.rdatatype.RdataType, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
            if synthesized:
                return _as_rrset(qname, rdataset)
            cached = self.rrset(owner, rdtype)
            assert cached is not None
            return cached

        if qtype == ANY:
            rrsets = [rrset_of(rds.rdtype, rds) for rds in node.rdatasets if rds.rdtype != dns.rdatatype.RRSIG]
            if rrsets:
                return Lookup(Outcome.ANSWER, answer=rrsets)
            return Lookup(Outcome.NODATA, authority=[self.negative_soa])
        rdataset = node.get_rdataset(IN, qtype)
        if rdataset is not None:
            return Lookup(Outcome.ANSWER, answer=[rrset_of(qtype, rdataset)])
        cname = node.get_rdataset(IN, CNAME)
        if cname is not None:
            return Lookup(Outcome.CNAME, answer=[rrset_of(CNAME, cname)], target=cname[0].target)
        return Lookup(Outcome.NODATA, authority=[self.negative_soa])

    def _referral(self, cut: dns.name.Name) -> Lookup:
        ns = self.rrset(cut, NS)
        assert ns is not None
        glue: list[dns.rrset.RRset] = []
        for rdata in ns:
            target = rdata.target
            if target.is_subdomain(self.origin):  # in-bailiwick only
                glue.extend(self.addresses(target))
        return Lookup(Outcome.REFERRAL, authority=[ns], additional=glue)

    def _dname(self, qname: dns.name.Name, owner: dns.name.Name, dname: dns.rdataset.Rdataset) -> Lookup:
        dname_rrset = self.rrset(owner, DNAME)
        assert dname_rrset is not None
        try:
            target = qname.relativize(owner).derelativize(dname[0].target)
        except dns.name.NameTooLong:
            return Lookup(Outcome.YXDOMAIN, answer=[dname_rrset])
        cname = dns.rrset.from_rdata(qname, dname.ttl, dns.rdata.from_text(IN, CNAME, target.to_text()))
        return Lookup(Outcome.DNAME, answer=[dname_rrset, cname], target=target)


def _as_rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
    rrset.update(rdataset)  # type: ignore[no-untyped-call]  # dnspython's Set.update is unannotated
    return rrset


class ZoneSet:
    """The zones one server instance is authoritative for, keyed by origin."""

    def __init__(self, zones: Iterable[IndexedZone | dns.zone.Zone] = ()) -> None:
        self._zones: dict[dns.name.Name, IndexedZone] = {}
        for zone in zones:
            indexed = zone if isinstance(zone, IndexedZone) else IndexedZone(zone)
            self._zones[indexed.origin] = indexed

    @classmethod
    def from_texts(cls, zones: Mapping[str, ZoneSource]) -> ZoneSet:
        """Parse a mapping of origin to zone text (each must have its SOA and NS)."""
        return cls(parse_zone(source, origin) for origin, source in zones.items())

    def __len__(self) -> int:
        return len(self._zones)

    def __iter__(self) -> Iterator[IndexedZone]:
        return iter(self._zones.values())

    def __contains__(self, origin: object) -> bool:
        return origin in self._zones

    @property
    def origins(self) -> list[dns.name.Name]:
        """The origins served."""
        return list(self._zones)

    def get(self, origin: dns.name.Name) -> IndexedZone | None:
        """The zone whose origin is exactly *origin*."""
        return self._zones.get(origin)

    def find(self, name: dns.name.Name, *, parent_side: bool = False) -> IndexedZone | None:
        """The closest enclosing zone served for *name*, or ``None``.

        With *parent_side* (used for DS queries, RFC 4035 section 3.1.4.1) a
        zone whose apex is exactly *name* is skipped when its parent is served too.
        """
        candidate = name
        skipped: IndexedZone | None = None
        while True:
            zone = self._zones.get(candidate)
            if zone is not None:
                if parent_side and candidate == name and candidate != dns.name.root:
                    skipped = zone
                else:
                    return zone
            if candidate == dns.name.root:
                return skipped
            candidate = candidate.parent()
