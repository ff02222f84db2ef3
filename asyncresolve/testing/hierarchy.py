"""Synthesise a delegation hierarchy (root -> TLDs -> zones) around the user's zones.

Given the user's zones and the address of every name server, :func:`build_zones`
returns the final zone data:

* a root zone and one zone per TLD are synthesised unless the user gives them,
  plus the lab's infrastructure zone (``lab.`` by default) that holds the
  addresses of the root servers (``a.root-servers.lab.``) and of the name
  servers of glueless zones (``ns1.<zone-with-dashes>.hosts.lab.``);
* every zone's apex NS RRset is rewritten to name the lab's servers, and the
  address records of those names are replaced by the servers' real addresses,
  so the data a resolver sees always points where the zone is really served;
* every zone except the root is delegated from its closest enclosing zone,
  with glue for NS names inside the delegated zone (in-bailiwick glue only).
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone

from .zones import IN, NS, SOA

DEFAULT_TTL = 3600
"""TTL of synthesised records (NS, glue, SOA)."""

DEFAULT_SOA_TIMERS = "1 7200 900 1209600 300"
"""Serial, refresh, retry, expire and minimum of synthesised SOA records."""

ROLES = ("auth", "lame", "unreachable")


@dataclass(frozen=True)
class NameServer:
    """A name server listed in a zone's NS RRset.

    ``role`` is ``"auth"`` (a lab server serving the zone), ``"lame"`` (a lab
    server that does not serve it and answers REFUSED) or ``"unreachable"``
    (an address where nothing listens).
    """

    zone: dns.name.Name
    hostname: dns.name.Name
    address: str
    role: str = "auth"


def origins_to_build(user_origins: Iterable[dns.name.Name], infra: dns.name.Name) -> list[dns.name.Name]:
    """Every zone of the lab: the user's, the root, the TLDs above them and *infra*, parents first."""
    origins = {dns.name.root, infra, *user_origins}
    for origin in list(origins):
        if len(origin) > 2:
            origins.add(origin.split(2)[1])
    return sorted(origins, key=lambda name: (len(name), name))


def nameserver_hostnames(
    origin: dns.name.Name,
    count: int,
    *,
    role: str = "auth",
    glueless: bool = False,
    infra: dns.name.Name,
    existing: dns.zone.Zone | None = None,
    synthesized: bool = False,
) -> list[dns.name.Name]:
    """Choose *count* NS host names for *origin*.

    * root: ``a.root-servers.<infra>``, ``b.root-servers.<infra>``, ...
    * synthesised zones (TLDs, infra): ``ns1.nic.<zone>``, ...
    * user zones: the in-zone names of the zone's own apex NS RRset first
      (``ns1.example.test.`` stays ``ns1.example.test.``), then ``ns1.<zone>``, ...
    * glueless zones: ``ns1.<zone-with-dashes>.hosts.<infra>`` (outside the
      zone, so the parent cannot carry glue for it)
    * lame/unreachable servers: ``lame1.<zone>`` / ``unreachable1.<zone>``
      (under ``hosts.<infra>`` for glueless zones).
    """
    if count <= 0:
        return []
    if origin == dns.name.root:
        if role != "auth":
            return [dns.name.from_text(f"{role}{k}.root-servers", infra) for k in range(1, count + 1)]
        return [dns.name.from_text(f"{_letters(k)}.root-servers", infra) for k in range(count)]
    if glueless:
        label = origin.to_text(omit_final_dot=True).replace(".", "-")
        if len(label) > 63:
            label = "z" + hashlib.sha256(label.encode()).hexdigest()[:20]
        base = dns.name.from_text(f"{label}.hosts", infra)
    elif synthesized:
        base = dns.name.Name((b"nic", *origin.labels))
    else:
        base = origin
    prefix = "ns" if role == "auth" else role
    chosen: list[dns.name.Name] = []
    if role == "auth" and not glueless and existing is not None:
        apex_ns = existing.get_rdataset(origin, NS)
        for rdata in apex_ns or ():
            target = rdata.target
            if target.is_subdomain(origin) and target != origin and target not in chosen:
                chosen.append(target)
        chosen = chosen[:count]
    k = 1
    while len(chosen) < count:
        candidate = dns.name.Name((f"{prefix}{k}".encode(), *base.labels))
        if candidate not in chosen:
            chosen.append(candidate)
        k += 1
    return chosen


def _letters(index: int) -> str:
    letters = string.ascii_lowercase
    return letters[index] if index < len(letters) else f"{letters[index % 26]}{index // 26}"


def build_zones(
    user_zones: Mapping[dns.name.Name, dns.zone.Zone],
    nameservers: Iterable[NameServer],
    *,
    infra: dns.name.Name,
    ttl: int = DEFAULT_TTL,
) -> dict[dns.name.Name, dns.zone.Zone]:
    """The final zones (user zones are copied, not modified), parents before children."""
    servers_by_zone: dict[dns.name.Name, list[NameServer]] = {}
    for ns in nameservers:
        servers_by_zone.setdefault(ns.zone, []).append(ns)
    addresses = {ns.hostname: ns.address for group in servers_by_zone.values() for ns in group}
    zones: dict[dns.name.Name, dns.zone.Zone] = {}
    for origin in origins_to_build(user_zones, infra):
        if origin in user_zones:
            zones[origin] = _copy(user_zones[origin])
        else:
            zones[origin] = dns.zone.Zone(origin, relativize=False)
    for origin, zone in zones.items():
        hostnames = [ns.hostname for ns in servers_by_zone.get(origin, [])]
        if not hostnames:
            raise ValueError(f"zone {origin} has no name servers")
        _ensure_soa(zone, hostnames[0], ttl)
        ns_ttl = _ttl_of(zone, origin, NS, ttl)
        zone.delete_rdataset(origin, NS)
        zone.replace_rdataset(origin, _rdataset(NS, ns_ttl, [h.to_text() for h in hostnames]))
    for origin in zones:
        if origin == dns.name.root:
            continue
        parent = _closest_enclosing(zones, origin.parent())
        apex_ns = zones[origin].get_rdataset(origin, NS)
        assert apex_ns is not None
        if parent.get_node(origin) is not None:
            parent.delete_node(origin)  # the delegation replaces whatever the parent had there
        parent.replace_rdataset(origin, _rdataset(NS, apex_ns.ttl, [r.to_text() for r in apex_ns]))
    for hostname, address in addresses.items():
        home = _closest_enclosing(zones, hostname)
        _set_address(home, hostname, address, ttl)
    for zone in zones.values():  # glue: every in-bailiwick NS target of a zone gets its address there
        assert zone.origin is not None
        for node in list(zone.nodes.values()):
            rdataset = node.get_rdataset(IN, NS)
            for rdata in rdataset or ():
                target = rdata.target
                if target in addresses and target.is_subdomain(zone.origin):
                    _set_address(zone, target, addresses[target], ttl)
    return zones


def _copy(zone: dns.zone.Zone) -> dns.zone.Zone:
    return dns.zone.from_text(zone.to_text(relativize=False), origin=zone.origin, relativize=False, check_origin=False)


def _closest_enclosing(zones: Mapping[dns.name.Name, dns.zone.Zone], name: dns.name.Name) -> dns.zone.Zone:
    while name not in zones:
        name = name.parent()
    return zones[name]


def _ensure_soa(zone: dns.zone.Zone, mname: dns.name.Name, ttl: int) -> None:
    assert zone.origin is not None
    if zone.get_rdataset(zone.origin, SOA) is not None:
        return
    rname = dns.name.Name((b"hostmaster", *zone.origin.labels))
    zone.replace_rdataset(zone.origin, _rdataset(SOA, ttl, [f"{mname} {rname} {DEFAULT_SOA_TIMERS}"]))


def _ttl_of(zone: dns.zone.Zone, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, default: int) -> int:
    rdataset = zone.get_rdataset(name, rdtype)
    return rdataset.ttl if rdataset is not None else default


def _set_address(zone: dns.zone.Zone, hostname: dns.name.Name, address: str, default_ttl: int) -> None:
    ttl = _ttl_of(zone, hostname, dns.rdatatype.A, default_ttl)
    zone.delete_rdataset(hostname, dns.rdatatype.CNAME)
    zone.delete_rdataset(hostname, dns.rdatatype.AAAA)
    rdtype = dns.rdatatype.AAAA if ":" in address else dns.rdatatype.A
    zone.replace_rdataset(hostname, _rdataset(rdtype, ttl, [address]))


def _rdataset(rdtype: dns.rdatatype.RdataType, ttl: int, texts: list[str]) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_text_list(dns.rdataclass.IN, rdtype, ttl, texts)


def zone_to_text(zone: dns.zone.Zone) -> str:
    """Zone-file text of *zone* with absolute names and an ``$ORIGIN`` line (loadable by NSD, BIND...)."""
    return zone.to_text(relativize=False, want_origin=True, nl="\n")
