"""Tests for the real peers (NSD, unbound) in ``asyncresolve.testing.peers``.

Everything listens on random 127.x.y.z addresses, port 53 (CI runs as root).
A tiny dnspython authoritative server defined here builds a root -> test. ->
example.test. hierarchy for unbound to recurse through, so these tests do not
depend on the lab; the tests at the end also run against ``DNSLab`` when
``asyncresolve.testing.lab`` is present.

Missing ``nsd`` / ``unbound`` binaries skip these tests locally and fail them
under CI (``CI=true``): CI installs the Debian packages ``nsd`` and ``unbound``.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import cast

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from asyncresolve.testing.peers import (
    NSD,
    PeerMissing,
    PeerStartError,
    Unbound,
    _process,
    find_peer_binary,
    random_loopback_block,
    require_peer,
    require_root,
)

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def need(*names: str) -> None:
    """Require peer binaries and root (for port 53): skip locally, fail in CI."""
    require_peer(*names)
    require_root("peer tests listen on port 53")


def descendants(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command) of every live process descended from *pid*."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        children.setdefault(int(ppid), []).append(int(entry))
        info[int(entry)] = (state, comm)
    found: list[tuple[int, str, str]] = []
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append((child, *info[child]))
        stack += children.get(child, [])
    return found


def peer_processes() -> list[tuple[int, str, str]]:
    """nsd/unbound daemons and their supervisors (zombies included) of this process.

    Only our own descendants count: other test runs on the machine may have
    peers of their own.  (NSD renames its processes "nsd: xfrd", "nsd: main",
    "nsd: server 1", so ``pgrep -x nsd`` would miss them.)
    """
    return [
        proc for proc in descendants(os.getpid())
        if proc[1] == "Z" or proc[2].startswith(("nsd", "unbound"))
        or (proc[2].startswith("python") and not _multiprocessing_helper(proc[0]))
    ]


def _multiprocessing_helper(pid: int) -> bool:
    """multiprocessing's resource tracker or forkserver (left by an earlier test's process
    pool, e.g. the Dask cluster's), which lives as long as this process: not a peer."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"multiprocessing" in handle.read()
    except OSError:
        return False


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterable[None]:
    """Every test must stop every daemon it started, and reap it (no zombies)."""
    yield
    assert not peer_processes(), f"peer processes left behind: {peer_processes()}"
    assert not _process._LIVE, f"peers still registered: {list(_process._LIVE)}"


async def ask(
    server: tuple[str, int],
    name: str,
    rdtype: str,
    *,
    recurse: bool = False,
    tcp: bool = False,
    timeout: float = 3.0,
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if not recurse:
        query.flags &= ~dns.flags.RD
    if tcp:
        return await dns.asyncquery.tcp(query, server[0], port=server[1], timeout=timeout)
    return await dns.asyncquery.udp(query, server[0], port=server[1], timeout=timeout)


def rrset_texts(section: Sequence[dns.rrset.RRset]) -> list[tuple[str, str, int, list[str]]]:
    """A comparable view of a message section: (name, type, ttl, sorted rdata)."""
    return sorted(
        (
            rrset.name.to_text().lower(),
            dns.rdatatype.to_text(rrset.rdtype),
            rrset.ttl,
            sorted(rdata.to_text().lower() for rdata in rrset),
        )
        for rrset in section
    )


# --------------------------------------------------------------------------
# a tiny authoritative server on dnspython (UDP), for unbound to recurse through
# --------------------------------------------------------------------------


def origin_of(zone: dns.zone.Zone) -> dns.name.Name:
    assert zone.origin is not None
    return zone.origin


class TinyAuth(asyncio.DatagramProtocol):
    """Minimal authoritative UDP server for one or more zones.

    Answers from the deepest zone it holds: referrals (NS + glue, no AA) below
    zone cuts, authoritative answers with in-zone CNAME chasing, NXDOMAIN /
    NODATA with the SOA in authority, REFUSED outside its zones.  It records
    every question it receives in :attr:`queries`.
    """

    def __init__(self, zones: Iterable[dns.zone.Zone]) -> None:
        self.zones = sorted(zones, key=lambda z: len(origin_of(z)), reverse=True)
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 - not a query (dnspython raises many types): no reply
            return
        response = self.respond(query)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(max_size=65535), addr)

    def _zone_for(self, qname: dns.name.Name) -> dns.zone.Zone | None:
        for zone in self.zones:
            if qname.is_subdomain(origin_of(zone)):
                return zone
        return None

    @staticmethod
    def _rrset(zone: dns.zone.Zone, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        rdataset = zone.get_rdataset(name, rdtype)
        if rdataset is None:
            return None
        rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
        rrset.update(rdataset)
        return rrset

    def _cut(self, zone: dns.zone.Zone, qname: dns.name.Name) -> dns.name.Name | None:
        """Highest delegation point between the apex (excluded) and qname."""
        labels = len(qname) - len(origin_of(zone))
        for depth in range(1, labels + 1):
            name = qname.split(len(origin_of(zone)) + depth)[1]
            if zone.get_rdataset(name, dns.rdatatype.NS) is not None:
                return name
        return None

    def respond(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        self.queries.append((qname.to_text(), dns.rdatatype.to_text(qtype)))
        zone = self._zone_for(qname)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        cut = self._cut(zone, qname)
        if cut is not None:
            ns = self._rrset(zone, cut, dns.rdatatype.NS)
            assert ns is not None
            response.authority.append(ns)
            for rdata in ns:
                for glue_type in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    glue = self._rrset(zone, rdata.target, glue_type)
                    if glue is not None:
                        response.additional.append(glue)
            return response
        response.flags |= dns.flags.AA
        name = qname
        for _ in range(16):
            node = zone.get_node(name)
            if node is None:
                if name == qname and any(n.is_subdomain(qname) for n in zone.nodes):
                    break  # empty non-terminal: NODATA
                response.set_rcode(dns.rcode.NXDOMAIN)
                break
            found = self._rrset(zone, name, qtype)
            if found is not None:
                response.answer.append(found)
                return response
            cname = self._rrset(zone, name, dns.rdatatype.CNAME)
            if cname is None or qtype == dns.rdatatype.CNAME:
                break
            response.answer.append(cname)
            target = cname[0].target
            if not target.is_subdomain(origin_of(zone)) or self._cut(zone, target):
                return response
            name = target
        soa = self._rrset(zone, origin_of(zone), dns.rdatatype.SOA)
        assert soa is not None
        response.authority.append(soa)
        return response


@asynccontextmanager
async def tiny_servers(layout: dict[str, list[str]], zone_texts: dict[str, str]) -> AsyncIterator[dict[str, TinyAuth]]:
    """Run one TinyAuth per address on port 53: ``{address: [zone origins]}``."""
    transports: list[asyncio.DatagramTransport] = []
    servers: dict[str, TinyAuth] = {}
    loop = asyncio.get_running_loop()
    try:
        for address, origins in layout.items():
            zones = [dns.zone.from_text(zone_texts[o], origin=o, relativize=False) for o in origins]
            transport, protocol = await loop.create_datagram_endpoint(
                functools.partial(TinyAuth, zones), local_addr=(address, 53)
            )
            transports.append(transport)
            servers[address] = protocol
        yield servers
    finally:
        for transport in transports:
            transport.close()


def hierarchy(block: str) -> dict[str, str]:
    """root -> test. -> {example.test., other.test.} with servers in *block*."""
    root, tld, example, other = (block + str(n) for n in (1, 2, 3, 4))
    return {
        ".": f"""$TTL 3600
@ SOA a.root-servers. hostmaster.root-servers. 1 3600 600 86400 300
@ NS a.root-servers.
a.root-servers. A {root}
test. NS ns.test.
ns.test. A {tld}
""",
        "test.": f"""$TTL 3600
@ SOA ns hostmaster 1 3600 600 86400 300
@ NS ns
ns A {tld}
example NS ns.example
ns.example A {example}
other NS ns.other
ns.other A {other}
""",
        "example.test.": f"""$TTL 300
@ SOA ns hostmaster 2024010101 3600 600 86400 60
@ NS ns
ns A {example}
@ MX 10 mail
mail A 192.0.2.25
www A 192.0.2.10
www A 192.0.2.11
txt TXT "hello world" "second string"
alias CNAME www.other.test.
chain CNAME alias
final A 192.0.2.99
deep.ent A 192.0.2.5
""",
        "other.test.": f"""$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A {other}
www CNAME final.example.test.
""",
    }


def hierarchy_layout(block: str) -> dict[str, list[str]]:
    return {
        block + "1": ["."],
        block + "2": ["test."],
        block + "3": ["example.test."],
        block + "4": ["other.test."],
    }


# --------------------------------------------------------------------------
# plumbing: binaries, require_peer, argument checks
# --------------------------------------------------------------------------


def test_find_peer_binary_and_missing_hint() -> None:
    need()
    assert os.path.isabs(find_peer_binary("nsd"))
    assert os.path.isabs(find_peer_binary("unbound"))
    with pytest.raises(PeerMissing, match="apt-get install"):
        find_peer_binary("no-such-dns-daemon")


def test_require_peer_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install"):
        require_peer("no-such-dns-daemon")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_peer("no-such-dns-daemon")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_peer("no-such-dns-daemon")


def test_unbound_rejects_non_53_root_hints_and_non_loopback() -> None:
    need("unbound")
    with pytest.raises(ValueError, match="port 53"):
        Unbound(root_hints=[("127.0.0.1", 5353)])
    with pytest.raises(ValueError, match="loopback"):
        Unbound(root_hints=["192.0.2.1"])
    with pytest.raises(ValueError, match="loopback"):
        NSD({"x.test.": "@ SOA a b 1 2 3 4 5"}, address="192.0.2.1")


# --------------------------------------------------------------------------
# NSD
# --------------------------------------------------------------------------

EXAMPLE_ZONE = """$TTL 300
@ IN SOA ns1 hostmaster 2024010101 3600 600 86400 60
@ NS ns1
ns1 A {ns}
www A 192.0.2.1
www AAAA 2001:db8::1
@ MX 10 mail
@ MX 20 mail2
mail A 192.0.2.2
txt TXT "hello world" "second"
"""


@pytest.mark.asyncio
async def test_nsd_serves_zones_on_port_53() -> None:
    need("nsd")
    block = random_loopback_block()
    address = block + "8"
    zones = {
        "example.test.": EXAMPLE_ZONE.format(ns=address),
        "other.test": "@ 60 SOA ns.other.test. h.other.test. 7 60 60 60 30\n"
        "@ 60 NS ns.other.test.\nns 60 A 192.0.2.7\n",
    }
    async with NSD(zones, address=address, port=53) as nsd:
        assert nsd.endpoint == (address, 53)
        assert nsd.running
        server = nsd.endpoint

        soa = await ask(server, "example.test.", "SOA")
        assert soa.rcode() == dns.rcode.NOERROR
        assert soa.flags & dns.flags.AA
        assert rrset_texts(soa.answer) == [
            (
                "example.test.",
                "SOA",
                300,
                ["ns1.example.test. hostmaster.example.test. 2024010101 3600 600 86400 60"],
            )
        ]
        a = await ask(server, "www.example.test.", "A")
        assert rrset_texts(a.answer) == [("www.example.test.", "A", 300, ["192.0.2.1"])]
        mx = await ask(server, "example.test.", "MX", tcp=True)
        assert rrset_texts(mx.answer) == [
            ("example.test.", "MX", 300, ["10 mail.example.test.", "20 mail2.example.test."])
        ]
        txt = await ask(server, "txt.example.test.", "TXT")
        assert rrset_texts(txt.answer) == [("txt.example.test.", "TXT", 300, ['"hello world" "second"'])]
        nx = await ask(server, "nope.example.test.", "A")
        assert nx.rcode() == dns.rcode.NXDOMAIN
        assert nx.flags & dns.flags.AA
        assert not nx.answer
        assert [(r.name.to_text(), r.rdtype) for r in nx.authority] == [("example.test.", dns.rdatatype.SOA)]
        nodata = await ask(server, "www.example.test.", "MX")
        assert nodata.rcode() == dns.rcode.NOERROR
        assert not nodata.answer
        assert nodata.authority[0].rdtype == dns.rdatatype.SOA
        other = await ask(server, "ns.other.test.", "A")
        assert rrset_texts(other.answer) == [("ns.other.test.", "A", 60, ["192.0.2.7"])]
        refused = await ask(server, "elsewhere.invalid.", "A")
        assert refused.rcode() == dns.rcode.REFUSED
        # Rate limiting is off: a burst is answered in full.
        burst = await asyncio.gather(*(ask(server, "www.example.test.", "A") for _ in range(200)))
        assert all(r.answer and not r.flags & dns.flags.TC for r in burst)
        pid = nsd.pid
        workdir = nsd.workdir
    assert pid is not None
    assert not nsd.running
    assert workdir is not None
    assert not workdir.exists()


def test_nsd_sync_start_stop_free_port() -> None:
    need("nsd")
    nsd = NSD({"example.test.": EXAMPLE_ZONE.format(ns="127.0.0.1")}, port=None)
    nsd.start()
    try:
        assert nsd.port > 1024
        assert nsd.running
        import dns.query

        response = dns.query.udp(
            dns.message.make_query("www.example.test.", "A"),
            nsd.address,
            port=nsd.port,
            timeout=2,
        )
        assert response.answer
    finally:
        nsd.stop()
    assert not nsd.running
    nsd.stop()  # idempotent


@pytest.mark.asyncio
async def test_peers_stopped_and_reaped_when_the_block_raises() -> None:
    need("nsd", "unbound")
    zone = {"example.test.": EXAMPLE_ZONE.format(ns="127.0.0.1")}
    nsd = NSD(zone, port=None)
    # the block under test is the context manager itself, with what runs inside it
    with pytest.raises(RuntimeError, match="boom"):  # noqa: PT012
        async with nsd:
            assert any(p[2].startswith("nsd") for p in peer_processes())
            raise RuntimeError("boom")
    ub = Unbound(["127.0.0.1"], port=None)
    with pytest.raises(RuntimeError, match="boom"), ub:  # noqa: PT012 - as above
        assert any(p[2] == "unbound" for p in peer_processes())
        raise RuntimeError("boom")
    assert not nsd.running
    assert not ub.running
    assert not peer_processes()


def test_nsd_bad_zone_raises_with_checker_output() -> None:
    need("nsd")
    nsd = NSD({"example.test.": "this is not a zone\n"}, port=None)
    with pytest.raises(PeerStartError, match="no SOA record"):
        nsd.start()
    assert not nsd.running
    assert nsd.workdir is None


@pytest.mark.asyncio
async def test_taken_port_is_refused_before_start() -> None:
    """NSD binds UDP with SO_REUSEADDR and would share a taken port silently."""
    need("nsd")
    zone = {"example.test.": EXAMPLE_ZONE.format(ns="127.0.0.1")}
    async with NSD(zone, port=None) as first:
        clash = NSD(zone, first.address, first.port)
        with pytest.raises(PeerStartError, match="already in use"):
            await clash.astart()
        assert not clash.running
        assert clash.workdir is None


def test_start_failure_surfaces_daemon_output() -> None:
    """A daemon that exits while starting raises with its own log."""
    need("unbound")
    # 192.0.2.1 is not on this machine: unbound cannot bind it and exits.
    # (A listening address, never a destination: nothing is sent.)
    ub = Unbound(["127.0.0.1"], port=None, extra_server_config=["interface: 192.0.2.1"])
    with pytest.raises(PeerStartError, match="exited with status") as info:
        ub.start()
    assert "can't bind" in str(info.value) or "Cannot assign" in str(info.value)
    assert not ub.running


# --------------------------------------------------------------------------
# unbound through the tiny hierarchy, and through NSD
# --------------------------------------------------------------------------


async def check_recursion(server: tuple[str, int]) -> None:
    """The resolution cases of :func:`hierarchy` through a recursive server."""
    a = await ask(server, "www.example.test.", "A", recurse=True)
    assert a.rcode() == dns.rcode.NOERROR
    assert a.flags & dns.flags.RA
    assert rrset_texts(a.answer) == [("www.example.test.", "A", 300, ["192.0.2.10", "192.0.2.11"])]
    mx = await ask(server, "example.test.", "MX", recurse=True)
    assert "10 mail.example.test." in rrset_texts(mx.answer)[0][3]
    txt = await ask(server, "txt.example.test.", "TXT", recurse=True)
    assert rrset_texts(txt.answer)[0][3] == ['"hello world" "second string"']

    chain = await ask(server, "chain.example.test.", "A", recurse=True)
    assert chain.rcode() == dns.rcode.NOERROR
    got = {(r.name.to_text(), dns.rdatatype.to_text(r.rdtype)): r for r in chain.answer}
    assert set(got) == {
        ("chain.example.test.", "CNAME"),
        ("alias.example.test.", "CNAME"),
        ("www.other.test.", "CNAME"),
        ("final.example.test.", "A"),
    }
    assert got[("www.other.test.", "CNAME")][0].to_text() == "final.example.test."
    assert got[("final.example.test.", "A")][0].to_text() == "192.0.2.99"

    nx = await ask(server, "nope.example.test.", "A", recurse=True)
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert not nx.answer
    assert nx.authority
    assert nx.authority[0].rdtype == dns.rdatatype.SOA
    nx_tld = await ask(server, "nope.zz.", "A", recurse=True)
    assert nx_tld.rcode() == dns.rcode.NXDOMAIN

    nodata = await ask(server, "www.example.test.", "MX", recurse=True)
    assert nodata.rcode() == dns.rcode.NOERROR
    assert not nodata.answer
    ent = await ask(server, "ent.example.test.", "A", recurse=True)
    assert ent.rcode() == dns.rcode.NOERROR
    assert not ent.answer


@pytest.mark.asyncio
async def test_unbound_resolves_tiny_hierarchy_and_restart_is_cold() -> None:
    need("unbound")
    block = random_loopback_block()
    zones = hierarchy(block)
    async with (
        tiny_servers(hierarchy_layout(block), zones) as servers,
        Unbound(root_hints=[(block + "1", 53)], address=block + "53") as ub,
    ):
        assert ub.endpoint == (block + "53", 53)
        await check_recursion(ub.endpoint)
        example = servers[block + "3"]
        assert ("www.example.test.", "A") in example.queries

        # Warm: answered from cache, no query reaches the servers.
        sent = sum(len(s.queries) for s in servers.values())
        await ask(ub.endpoint, "www.example.test.", "A", recurse=True)
        await ask(ub.endpoint, "chain.example.test.", "A", recurse=True)
        assert sum(len(s.queries) for s in servers.values()) == sent

        # Restart: cold cache, priming and the full walk again.
        old_pid = ub.pid
        await ub.restart()
        assert ub.pid != old_pid
        assert ub.endpoint == (block + "53", 53)
        for server in servers.values():
            server.queries.clear()
        await ask(ub.endpoint, "www.example.test.", "A", recurse=True)
        assert (".", "NS") in servers[block + "1"].queries  # priming
        assert ("www.example.test.", "A") in example.queries

        # flush (unbound-control reload) also empties the caches.
        example.queries.clear()
        await ub.flush()
        await ask(ub.endpoint, "www.example.test.", "A", recurse=True)
        assert ("www.example.test.", "A") in example.queries


@pytest.mark.asyncio
async def test_unbound_through_nsd_only_hierarchy() -> None:
    """Real peers only: unbound recursing through four NSDs (root, TLD, 2 zones)."""
    need("nsd", "unbound")
    block = random_loopback_block()
    zones = hierarchy(block)
    async with AsyncExitStack() as stack:
        nsds = [
            NSD({origin: zones[origin] for origin in origins}, address=address, port=53)
            for address, origins in hierarchy_layout(block).items()
        ]
        for nsd in nsds:
            stack.push_async_callback(nsd.astop)
        await asyncio.gather(*(n.astart() for n in nsds))
        ub = await stack.enter_async_context(Unbound(root_hints=[block + "1"]))
        await check_recursion(ub.endpoint)


# --------------------------------------------------------------------------
# with DNSLab (asyncresolve.testing.lab), when present
# --------------------------------------------------------------------------


#: User zones for the lab tests; the lab adds the root, test., the delegations,
#: SOAs where missing and the apex NS RRsets.
LAB_ZONES = {
    "example.test.": """$TTL 300
@ MX 10 mail
@ MX 20 mail2.other.test.
@ TXT "v=spf1 -all"
mail A 192.0.2.25
mail AAAA 2001:db8::25
www A 192.0.2.10
www A 192.0.2.11
www AAAA 2001:db8::10
txt TXT "hello world" "second string"
alias CNAME www.other.test.
chain CNAME alias
final A 192.0.2.99
inzone CNAME www
deep.ent A 192.0.2.5
*.wild A 192.0.2.42
*.wild TXT "wildcard"
_sip._udp SRV 10 60 5060 sip
sip 60 A 192.0.2.60
""",
    "other.test.": """$TTL 600
www CNAME final.example.test.
@ A 192.0.2.200
""",
    "sub.example.test.": """$TTL 120
host A 192.0.2.77
""",
}


def lab_cases(origin: str, text: str) -> list[tuple[str, str]]:
    """(name, type) queries for one zone: every RRset, absent types (NODATA),
    missing names (NXDOMAIN), empty non-terminals, wildcard expansions, and
    names at and below zone cuts (referrals)."""
    zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    probe_types = ("A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "SRV")
    cases: set[tuple[str, str]] = set()
    for name, node in zone.nodes.items():
        present = {dns.rdatatype.to_text(rds.rdtype) for rds in node}
        for rdtype in sorted(present | set(probe_types)):
            cases.add((name.to_text(), rdtype))
        if name.labels[0] == b"*":
            cases.add((dns.name.Name((b"wild-probe", *name.labels[1:])).to_text(), "A"))
        # Empty non-terminals above the name, and a missing name below it.
        parent = name.parent() if name != origin_of(zone) else origin_of(zone)
        while parent != origin_of(zone) and parent.is_subdomain(origin_of(zone)):
            if zone.get_node(parent) is None:
                cases.add((parent.to_text(), "A"))
            parent = parent.parent()
        if name.labels[0] != b"*":
            cases.add((dns.name.Name((b"nx-probe", *name.labels)).to_text(), "TXT"))
        if name != origin_of(zone) and "NS" in present:
            cases.add((dns.name.Name((b"below", *name.labels)).to_text(), "A"))
    cases.add(("no-such-name." + origin.lstrip(".") if origin != "." else "no-such-tld.", "A"))
    return sorted(cases)


def describe(response: dns.message.Message) -> dict[str, object]:
    """What must agree between NSD and the lab server for one query."""
    aa = bool(response.flags & dns.flags.AA)
    view: dict[str, object] = {
        "rcode": dns.rcode.to_text(response.rcode()),
        "aa": aa,
        "answer": rrset_texts(response.answer),
    }
    if not response.answer:
        # Negative answer: the zone's SOA; referral: the child's NS RRset.
        view["authority"] = sorted(
            (r.name.to_text().lower(), dns.rdatatype.to_text(r.rdtype))
            for r in response.authority
            if r.rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS)
        )
    return view


@pytest.mark.asyncio
async def test_differential_nsd_vs_lab_servers(capsys: pytest.CaptureFixture[str]) -> None:
    """Every name and type of every lab zone: NSD and the lab server agree.

    Each lab server serves exactly one zone, so each zone gets its own NSD
    serving just that zone text (``lab.zones[origin]``): the same question
    then goes to two servers holding the same data, and referrals at zone cuts
    are compared too.  This validates the lab's server against NSD.
    """
    need("nsd")
    from asyncresolve.testing.lab import DNSLab

    block = random_loopback_block()
    async with DNSLab(LAB_ZONES, port=53) as lab, AsyncExitStack() as stack:
        nsds: dict[str, NSD] = {}
        for index, (origin, text) in enumerate(sorted(lab.zones.items())):
            nsd = NSD({origin: text}, address=f"{block}{index + 1}", port=53)
            stack.push_async_callback(nsd.astop)
            nsds[origin] = nsd
        await asyncio.gather(*(nsd.astart() for nsd in nsds.values()))

        compared = 0
        mismatches: list[str] = []
        for origin, text in sorted(lab.zones.items()):
            lab_server = lab.server_for(origin).address
            for name, rdtype in lab_cases(origin, text):
                theirs, ours = await asyncio.gather(
                    ask(nsds[origin].endpoint, name, rdtype),
                    ask(lab_server, name, rdtype),
                )
                compared += 1
                if describe(theirs) != describe(ours):
                    mismatches.append(
                        f"{name} {rdtype} (zone {origin}):\n  nsd: {describe(theirs)}\n  lab: {describe(ours)}"
                    )
        with capsys.disabled():
            print(f"\ndifferential NSD vs lab: {compared} queries over {len(nsds)} zones, {len(mismatches)} mismatches")
        assert not mismatches, "\n".join(mismatches)
        assert compared > 100


@pytest.mark.asyncio
async def test_unbound_resolves_lab_from_lab_root() -> None:
    """unbound, primed from the lab root, answers the lab's zones."""
    need("unbound")
    from asyncresolve.testing.lab import DNSLab

    async with DNSLab(LAB_ZONES, port=53) as lab:
        assert all(port == 53 for _, port in lab.root_hints)
        async with Unbound(root_hints=lab.root_hints) as ub:
            await check_recursion(ub.endpoint)
            sub = await ask(ub.endpoint, "host.sub.example.test.", "A", recurse=True)
            assert rrset_texts(sub.answer) == [("host.sub.example.test.", "A", 120, ["192.0.2.77"])]
            wild = await ask(ub.endpoint, "anything.wild.example.test.", "TXT", recurse=True)
            assert rrset_texts(wild.answer)[0][3] == ['"wildcard"']

            # Every RRset of every user zone, as the lab holds it, through unbound.
            checked = 0
            for origin in LAB_ZONES:
                zone = dns.zone.from_text(lab.zones[origin], origin=origin, relativize=False)
                for name, rdataset in zone.iterate_rdatasets():
                    if rdataset.rdtype in (dns.rdatatype.NS, dns.rdatatype.CNAME):
                        continue  # NS: parent/child; CNAME: followed, checked above
                    if name.labels[0] == b"*":
                        continue
                    rdtype = dns.rdatatype.to_text(rdataset.rdtype)
                    response = await ask(ub.endpoint, name.to_text(), rdtype, recurse=True)
                    want = sorted(r.to_text().lower() for r in rdataset)
                    got = [r[3] for r in rrset_texts(response.answer) if r[0] == name.to_text().lower()]
                    assert got == [want], f"{name} {rdtype}: {response}"
                    checked += 1
            assert checked > 10
        # The lab saw unbound prime from its root servers.
        assert lab.queries_for(".", "NS")
