"""Differential test: the iterative backend against a real unbound, from the same lab root.

For every name and type in the lab's zones (plus absent types, missing names, wildcard
expansions, names below zone cuts and names under a TLD that does not exist) both
resolvers must agree on the rcode and, for positive answers, on the answer record sets:
owner names, types and data of the final RRset and of the CNAME chain, with TTLs within
the zone's values. Negative answers compare the rcode (``NXDomain``/``NoAnswer`` do not
carry the CNAME chain that unbound puts in the answer section before a negative end).

Needs the ``unbound`` binary and root (port 53): skipped locally without them, failed under CI.
"""

from __future__ import annotations

import asyncio
import os

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from asyncresolve.answer import Answer
from asyncresolve.backends.base import Query
from asyncresolve.backends.iterative import IterativeBackend
from asyncresolve.errors import NoAnswer, NXDomain, ResolveError, ServFail
from asyncresolve.testing import DNSLab
from asyncresolve.testing.peers import Unbound, require_peer, require_root

ZONES = {
    "example.test.": """
@        3600 IN MX    10 mail
@        3600 IN TXT   "v=spf1 -all"
www       300 IN A     192.0.2.1
www       300 IN A     192.0.2.2
www       300 IN AAAA  2001:db8::1
mail      300 IN A     192.0.2.25
txt       300 IN TXT   "hello world" "second string"
_sip._tcp 300 IN SRV   10 60 5060 sip
sip       300 IN A     192.0.2.50
@         300 IN CAA   0 issue "ca.example.net"
naptr     300 IN NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.test!" .
ptr       300 IN PTR   www.example.test.
hinfo     300 IN HINFO "PC" "Linux"
alias     200 IN CNAME alias2
alias2    100 IN CNAME www
cross     300 IN CNAME www.other.test.
crossmx   300 IN CNAME other.test.
dangling  300 IN CNAME gone.other.test.
tochild   300 IN CNAME www.child.example.test.
*.wild    300 IN A     192.0.2.99
*.wild    300 IN TXT   "wild"
deep.sub  300 IN TXT   "deep"
dn        300 IN DNAME other.test.
""",
    "child.example.test.": """
www       90 IN A     192.0.2.111
@         90 IN TXT   "child apex"
""",
    "other.test.": """
@         60 IN MX    5 host
www       60 IN A     192.0.2.9
host      60 IN A     192.0.2.10
back      60 IN CNAME alias.example.test.
""",
    "glueless.test.": "www 120 IN A 192.0.2.77\n",
    "example.org.": """
www       300 IN A    198.51.100.1
ftp       300 IN CNAME www.example.test.
""",
}

PROBE_TYPES = ("A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME")
SKIP_TYPES = {"RRSIG", "NSEC", "NSEC3", "DNSKEY", "DS"}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes", "on")


def need_unbound() -> None:
    require_peer("unbound")
    require_root("unbound only talks to port 53")


def cases_for(zones: dict[str, str]) -> list[tuple[str, str]]:
    cases: set[tuple[str, str]] = set()
    for origin, text in zones.items():
        zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        for name, node in zone.nodes.items():
            present = {dns.rdatatype.to_text(rds.rdtype) for rds in node} - SKIP_TYPES
            if name.labels[0] == b"*":
                for rdtype in sorted(present | {"A", "MX"}):
                    cases.add((dns.name.Name((b"wc-probe", *name.labels[1:])).to_text(), rdtype))
                continue
            for rdtype in sorted(present | set(PROBE_TYPES)):
                cases.add((name.to_text(), rdtype))
            cases.add((dns.name.Name((b"nx-probe", *name.labels)).to_text(), "A"))
            if name != zone.origin and "NS" in present:
                cases.add((dns.name.Name((b"below", *name.labels)).to_text(), "A"))
    for missing in ("nosuchtld.", "www.nosuchtld.", "a.b.c.nope.example.test.", "nope.other.test.",
                    "x.y.glueless.test.", "nothing.example.org.", "gone.other.test."):
        cases.add((missing, "A"))
    return sorted(cases)


def zone_ttls(zones: dict[str, str]) -> dict[tuple[str, str], int]:
    ttls: dict[tuple[str, str], int] = {}
    for origin, text in zones.items():
        zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        for name, node in zone.nodes.items():
            for rds in node:
                key = (name.to_text().lower(), dns.rdatatype.to_text(rds.rdtype))
                ttls[key] = max(ttls.get(key, 0), rds.ttl)
    return ttls


View = tuple[str, frozenset[tuple[str, str, str]], dict[tuple[str, str, str], int]]


def view_of_answer(result: Answer | ResolveError) -> View:
    if isinstance(result, Answer):
        records = [*result.cname_chain, *result.records]
        rows = {(r.name, r.rdtype, r.text.lower()): r.ttl for r in records}
        return "NOERROR", frozenset(rows), rows
    if isinstance(result, NXDomain):
        return "NXDOMAIN", frozenset(), {}
    if isinstance(result, NoAnswer):
        return "NOERROR", frozenset(), {}
    if isinstance(result, ServFail):
        return result.rcode or "SERVFAIL", frozenset(), {}
    return type(result).__name__, frozenset(), {}


def view_of_message(message: dns.message.Message, qtype: str) -> View:
    rcode = dns.rcode.to_text(message.rcode())
    wanted = dns.rdatatype.from_text(qtype)
    has_final = any(r.rdtype == wanted for r in message.answer)
    rows: dict[tuple[str, str, str], int] = {}
    if rcode == "NOERROR" and has_final:
        for rrset in message.answer:
            if rrset.rdtype == dns.rdatatype.DNAME and wanted != dns.rdatatype.DNAME:
                continue  # we report the synthesised CNAME, as unbound does next to it
            for rdata in rrset:
                rows[(rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype),
                      rdata.to_text().lower())] = rrset.ttl
    return rcode, frozenset(rows), rows


async def ask_unbound(endpoint: tuple[str, int], name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    for attempt in range(3):
        try:
            return await dns.asyncquery.udp(query, endpoint[0], port=endpoint[1], timeout=5.0)
        except dns.exception.Timeout:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def ask_ours(backend: IterativeBackend, name: str, rdtype: str) -> Answer | ResolveError:
    loop = asyncio.get_running_loop()
    try:
        return await backend.resolve(Query(name.lower(), rdtype, loop.time() + 5.0))
    except ResolveError as exc:
        return exc


async def test_differential_against_unbound(capsys: pytest.CaptureFixture[str]) -> None:
    need_unbound()
    async with DNSLab(ZONES, port=53, glueless=["glueless.test."],
                      servers_per_zone={"example.test.": 2}, stub=False) as lab:
        all_zones = lab.zones
        cases = cases_for(all_zones)
        ttls = zone_ttls(all_zones)
        backend = IterativeBackend(root_hints=lab.root_hints, port=lab.port)
        async with Unbound(root_hints=lab.root_hints) as unbound:
            mismatches: list[str] = []
            compared = 0
            positive = 0
            semaphore = asyncio.Semaphore(16)

            async def one(name: str, rdtype: str) -> None:
                nonlocal compared, positive
                async with semaphore:
                    ours_raw, theirs_msg = await asyncio.gather(
                        ask_ours(backend, name, rdtype), ask_unbound(unbound.endpoint, name, rdtype))
                ours = view_of_answer(ours_raw)
                theirs = view_of_message(theirs_msg, rdtype)
                compared += 1
                if ours[:2] != theirs[:2]:
                    mismatches.append(f"{name} {rdtype}:\n  iterative: {ours[:2]} ({ours_raw!r})\n"
                                      f"  unbound:   {theirs[:2]}")
                    return
                if ours[1]:
                    positive += 1
                for key, ttl in ours[2].items():
                    their_ttl = theirs[2][key]
                    bound = ttls.get((key[0], key[1]))
                    if bound is not None:  # the zone's own value
                        ok = 0 < ttl <= bound and 0 < their_ttl <= bound
                    else:  # synthesised (wildcard expansion, DNAME): no zone row to compare with
                        ok = ttl > 0 and abs(ttl - their_ttl) <= 5
                    if not ok:
                        mismatches.append(f"{name} {rdtype}: TTL {ttl} (unbound {their_ttl}) of {key}, "
                                          f"zone value {bound}")

            await asyncio.gather(*(one(name, rdtype) for name, rdtype in cases))
            with capsys.disabled():
                print(f"\ndifferential iterative vs unbound: compared {compared} cases "
                      f"({positive} positive answers) over {len(all_zones)} zones, "
                      f"{len(mismatches)} mismatches")
            assert not mismatches, "\n".join(mismatches[:40])
            assert compared == len(cases)
            assert compared > 200
            assert positive > 60
