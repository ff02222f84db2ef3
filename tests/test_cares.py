"""The c-ares backend against the lab's flat stub server, a flat NSD, and unbound resolving
from the lab's root.

Every address is on loopback; no test uses the backend's resolv.conf default except with a
private resolv.conf naming a lab server. c-ares's own query cache is off by default, and
tests that count upstream queries use distinct names anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from asyncresolve.backends import _fdwatch
from asyncresolve.backends.base import NotMine, Query
from asyncresolve.backends.cares import CaresBackend, _server_csv, read_resolv_conf
from asyncresolve.cache import TTLCache
from asyncresolve.errors import (
    InvalidName,
    NetworkError,
    NoAnswer,
    NXDomain,
    ResolverClosed,
    ResolveTimeout,
    ServFail,
)
from asyncresolve.records import CNAMERecord, Record, SOARecord, TXTRecord, from_rdata
from asyncresolve.resolver import Resolver
from asyncresolve.testing import DNSLab
from asyncresolve.testing.peers import NSD, Unbound, free_port, random_loopback_address, require_peer

LONG_STRINGS = tuple(bytes([65 + i]) * 250 for i in range(6))  # 1,500+ bytes: over EDNS's 1232
MEDIUM_STRINGS = (b"m" * 255, b"n" * 255, b"o" * 100)  # 610 bytes: over 512, under 1232

ZONE = """
$TTL 300
@        3600 IN SOA ns1.cares.test. hostmaster.cares.test. 2024010101 7200 3600 1209600 120
a         111 IN A     192.0.2.1
a         111 IN A     192.0.2.2
aaaa      112 IN AAAA  2001:db8::1
alias     113 IN CNAME alias2
alias2    114 IN CNAME a
dangling  113 IN CNAME nothing-here
mx        115 IN MX    10 mail.cares.test.
mx        115 IN MX    20 mail2.cares.test.
ptr       117 IN PTR   target.cares.test.
_sip._tcp 118 IN SRV   10 20 5060 sip.cares.test.
txt       119 IN TXT   "v=spf1 -all" "second string"
medium    120 IN TXT   {medium}
long      121 IN TXT   {long}
caa       122 IN CAA   0 issue "letsencrypt.org"
caa       122 IN CAA   128 iodef "mailto:sec@cares.test"
naptr     123 IN NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .
https     124 IN HTTPS 1 . alpn="h2,h3" port=8443 ipv4hint=192.0.2.1
_443._tcp 125 IN TLSA  3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
_http._tcp 126 IN URI  10 1 "http://www.example.com/path"
MiXeD     127 IN A     192.0.2.9
""".format(
    medium=" ".join(f'"{s.decode()}"' for s in MEDIUM_STRINGS),
    long=" ".join(f'"{s.decode()}"' for s in LONG_STRINGS),
)
# SOA TTL below its MINIMUM: the negative TTL is the TTL (RFC 2308 takes the lesser).
SHORT_ZONE = """
@    30 IN SOA ns1.short.test. hostmaster.short.test. 1 7200 3600 1209600 600
x   200 IN A 192.0.2.77
"""
BULK = 1000
BULK_ZONE = "\n".join(f"h{i} 300 IN A 10.1.{i // 256}.{i % 256}" for i in range(BULK))
ZONES = {"cares.test.": ZONE, "short.test.": SHORT_ZONE, "bulk.test.": BULK_ZONE}

# (owner relative to cares.test., type) checked against the zone data.
CASES = [
    ("a", "A"), ("aaaa", "AAAA"), ("alias", "CNAME"), ("mx", "MX"), ("ptr", "PTR"),
    ("@", "SOA"), ("_sip._tcp", "SRV"), ("txt", "TXT"), ("medium", "TXT"), ("caa", "CAA"),
    ("naptr", "NAPTR"), ("https", "HTTPS"), ("_443._tcp", "TLSA"), ("_http._tcp", "URI"),
    ("mixed", "A"), ("@", "NS"),
]
KINDS = ["stub", "nsd", "unbound"]


def expected_records(zone_text: str, origin: str, name: str, rdtype: str) -> set[Record]:
    """The records of (name, type) in the zone text, through dnspython (not through c-ares)."""
    zone = dns.zone.from_text(zone_text, origin, relativize=False, check_origin=False)
    owner = dns.name.from_text(name, dns.name.from_text(origin))
    rrset = zone.find_rrset(owner, dns.rdatatype.from_text(rdtype))
    return {from_rdata(owner.to_text().lower(), rrset.ttl, rd) for rd in rrset}


def assert_same(got: tuple[Record, ...], want: set[Record], *, ttl_slack: int) -> None:
    """Same data; each TTL equal (authoritative) or at most ``ttl_slack`` below (a cache)."""
    assert {r.with_ttl(0) for r in got} == {r.with_ttl(0) for r in want}
    want_ttl = {r.with_ttl(0): r.ttl for r in want}
    for record in got:
        assert want_ttl[record.with_ttl(0)] - ttl_slack <= record.ttl <= want_ttl[record.with_ttl(0)], record


def qname(rel: str, origin: str = "cares.test.") -> str:
    return origin if rel == "@" else f"{rel.lower()}.{origin}"


@contextlib.asynccontextmanager
async def upstream(kind: str, **lab_options: object) -> AsyncIterator[tuple[str, DNSLab]]:
    """``("ip:port", lab)`` of a server answering for ZONES: the lab's flat stub, a flat NSD
    with the lab's zone data, or unbound recursing from the lab's root (port 53)."""
    if kind == "stub":
        async with DNSLab(ZONES, **lab_options) as lab:  # type: ignore[arg-type]
            host, port = lab.stub_server
            yield f"{host}:{port}", lab
    elif kind == "nsd":
        require_peer("nsd")
        async with DNSLab(ZONES, **lab_options) as lab:  # type: ignore[arg-type]
            zones = {origin: text for origin, text in lab.zones.items() if origin != "."}
            address = random_loopback_address()
            async with NSD(zones, address=address, port=free_port(address)) as nsd:
                yield f"{nsd.endpoint[0]}:{nsd.endpoint[1]}", lab
    elif kind == "unbound":
        require_peer("unbound")
        async with DNSLab(ZONES, port=53, **lab_options) as lab:  # type: ignore[arg-type]
            address = random_loopback_address()
            async with Unbound(root_hints=lab.root_hints, address=address, port=free_port(address)) as ub:
                yield f"{ub.endpoint[0]}:{ub.endpoint[1]}", lab
    else:  # pragma: no cover
        raise ValueError(kind)


def timer_lateness(when: float) -> Callable[[], float]:
    """A canary timer at loop time ``when``; the function returned says how late it fired.

    A deadline test allows what a loaded machine adds to every timer of the loop (the canary
    fires in the same loop turn as a sweep due at the same time), so it still fails when a
    query outlives its deadline for any other reason (c-ares's own 2 s timeout, say)."""
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    loop.call_at(when, lambda: fired.append(loop.time() - when))
    return lambda: fired[0] if fired else 0.0


def query(name: str, rdtype: str, timeout: float = 5.0) -> Query:
    return Query(name, rdtype, asyncio.get_running_loop().time() + timeout)


# -- record types ---------------------------------------------------------------------------

async def check_all_types(server: str, lab: DNSLab, mode: str, ttl_slack: int) -> None:
    backend = CaresBackend([server], loop_mode=mode)  # type: ignore[arg-type]
    try:
        for rel, rdtype in CASES:
            answer = await backend.resolve(query(qname(rel), rdtype))
            if rdtype == "NS":  # the lab rewrites apex NS to its own servers
                want = expected_records(lab.zones["cares.test."], "cares.test.", rel, rdtype)
            else:
                want = expected_records(ZONE, "cares.test.", rel, rdtype)
            assert answer.source == "cares"
            assert answer.name == qname(rel)
            assert answer.rdtype == rdtype
            assert_same(answer.records, want, ttl_slack=ttl_slack)
            assert answer.ttl == min(r.ttl for r in answer.records)
    finally:
        await backend.aclose()


@pytest.mark.parametrize("mode", ["sockets", "thread"])
@pytest.mark.parametrize("kind", KINDS)
async def test_every_record_type_with_its_ttl(kind: str, mode: str) -> None:
    async with upstream(kind) as (server, lab):
        await check_all_types(server, lab, mode, ttl_slack=2 if kind == "unbound" else 0)


def test_record_types_on_uvloop() -> None:
    import uvloop  # a dev dependency: missing, it fails the test

    async def main() -> None:
        async with upstream("stub") as (server, lab):
            await check_all_types(server, lab, "sockets", ttl_slack=0)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def test_txt_strings_are_kept_apart_and_exact() -> None:
    async with upstream("stub") as (server, _lab):
        backend = CaresBackend([server])
        try:
            answer = await backend.resolve(query("txt.cares.test.", "TXT"))
        finally:
            await backend.aclose()
    (record,) = answer.records
    assert isinstance(record, TXTRecord)
    assert record.strings == (b"v=spf1 -all", b"second string")
    assert record.value == b"v=spf1 -allsecond string"


@pytest.mark.parametrize("kind", ["stub", "unbound"])
async def test_txt_over_512_bytes_falls_back_to_tcp(kind: str) -> None:
    async with upstream(kind) as (server, lab):
        plain = CaresBackend([server], edns=False)  # classic 512-byte UDP limit
        with_edns = CaresBackend([server])  # 1232-byte payload: the 1,500-byte TXT still truncates
        try:
            medium = await plain.resolve(query("medium.cares.test.", "TXT"))
            long = await with_edns.resolve(query("long.cares.test.", "TXT"))
        finally:
            await plain.aclose()
            await with_edns.aclose()
        assert [r.strings for r in medium.records] == [MEDIUM_STRINGS]  # type: ignore[attr-defined]
        assert [r.strings for r in long.records] == [LONG_STRINGS]  # type: ignore[attr-defined]
        if kind == "stub":
            seen = {(q.name, q.protocol) for q in lab.stub.queries}  # type: ignore[union-attr]
            assert ("medium.cares.test.", "tcp") in seen
            assert ("long.cares.test.", "tcp") in seen


# -- CNAME chains ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
async def test_cname_chain(kind: str) -> None:
    slack = 2 if kind == "unbound" else 0
    async with upstream(kind) as (server, _lab):
        backend = CaresBackend([server])
        try:
            answer = await backend.resolve(query("alias.cares.test.", "A"))
            # RFC 6604: the rcode is about the end of the chain, which does not exist.
            with pytest.raises(NXDomain):
                await backend.resolve(query("dangling.cares.test.", "A"))
        finally:
            await backend.aclose()
    assert answer.name == "alias.cares.test."
    assert answer.canonical_name == "a.cares.test."
    chain = [(c.name, c.target) for c in answer.cname_chain]
    assert chain == [("alias.cares.test.", "alias2.cares.test."), ("alias2.cares.test.", "a.cares.test.")]
    assert all(isinstance(c, CNAMERecord) for c in answer.cname_chain)
    first, second = (c.ttl for c in answer.cname_chain)
    assert 113 - slack <= first <= 113
    assert 114 - slack <= second <= 114
    assert_same(answer.records, expected_records(ZONE, "cares.test.", "a", "A"), ttl_slack=slack)
    assert answer.ttl <= 111


# -- negative answers -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
async def test_nxdomain_and_nodata_with_the_soa_negative_ttl(kind: str) -> None:
    slack = 2 if kind == "unbound" else 0
    async with upstream(kind) as (server, _lab):
        backend = CaresBackend([server])
        try:
            with pytest.raises(NXDomain) as nx:
                await backend.resolve(query("nope.cares.test.", "A"))
            with pytest.raises(NoAnswer) as nodata:
                await backend.resolve(query("a.cares.test.", "AAAA"))
            with pytest.raises(NXDomain) as short_nx:
                await backend.resolve(query("nope.short.test.", "TXT"))
        finally:
            await backend.aclose()
    for error, kind_of_error, soa_owner, ttl in ((nx.value, NXDomain, "cares.test.", 120),
                                                 (nodata.value, NoAnswer, "cares.test.", 120),
                                                 (short_nx.value, NXDomain, "short.test.", 30)):
        assert type(error) is kind_of_error  # exactly: NXDOMAIN and NODATA are told apart
        assert error.source == "cares"
        assert isinstance(error.soa, SOARecord)
        assert error.soa.name == soa_owner
        assert ttl - slack <= error.ttl <= ttl
        assert error.ttl == min(error.soa.ttl, error.soa.minimum)
    assert nx.value.soa.minimum == 120
    assert short_nx.value.soa.minimum == 600
    assert nx.value.name == "nope.cares.test."
    assert nodata.value.rdtype == "AAAA"


async def test_negative_ttl_goes_to_the_shared_cache() -> None:
    async with upstream("stub") as (server, lab):
        cache = TTLCache()
        resolver = Resolver(backends=[CaresBackend([server])], cache=cache, timeout=3.0)
        try:
            with pytest.raises(NXDomain):
                await resolver.resolve("gone.cares.test", "A")
            with pytest.raises(NoAnswer):
                await resolver.resolve("a.cares.test", "MX")
            before = lab.stub.query_count  # type: ignore[union-attr]
            with pytest.raises(NXDomain) as again:
                await resolver.resolve("gone.cares.test", "A")
            assert lab.stub.query_count == before  # type: ignore[union-attr]
            assert again.value.from_cache
        finally:
            await resolver.aclose()
        nx_ttl = cache.remaining_ttl(("gone.cares.test", "A", "IN"))  # typed relative: its own key
        nodata_ttl = cache.remaining_ttl(("a.cares.test", "MX", "IN"))
        assert nx_ttl is not None
        assert 118 <= nx_ttl <= 120
        assert nodata_ttl is not None
        assert 118 <= nodata_ttl <= 120


# -- failures -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sockets", "thread"])
@pytest.mark.parametrize("kind", ["stub", "unbound"])
async def test_deadline_honoured_against_a_server_that_drops_everything(kind: str, mode: str) -> None:
    async with upstream(kind) as (server, lab):
        dropper = lab.stub if kind == "stub" else lab.server_for("bulk.test.")
        dropper.faults.drop_rate = 1.0  # type: ignore[union-attr]
        # c-ares alone would wait 2 + 4 + 8 + 16 s.
        backend = CaresBackend([server], timeout=2.0, tries=4, loop_mode=mode)  # type: ignore[arg-type]
        try:
            for budget in (0.25, 0.1):
                start = time.monotonic()
                asked = query(f"a{budget}.bulk.test.", "A", timeout=budget)
                late = timer_lateness(asked.deadline)
                with pytest.raises(ResolveTimeout) as err:
                    await backend.resolve(asked)
                elapsed = time.monotonic() - start
                assert budget - 0.01 <= elapsed <= budget + 0.06 + late(), (elapsed, late())
                assert err.value.source == "cares"
            assert backend._channel is not None
            assert not backend._channel.pending
            # And through the resolver, whose deadline the backend receives.
            resolver = Resolver(backends=[backend], cache=TTLCache(), timeout=0.2)
            start = time.monotonic()
            with pytest.raises(ResolveTimeout):
                await resolver.resolve("h1.bulk.test", "A")
            assert time.monotonic() - start <= 0.27
        finally:
            await backend.aclose()


@pytest.mark.parametrize(("options", "expected"), [
    ({}, "kernel"),  # 4 queries per socket: the kernel's default buffer
    ({"udp_max_queries": 0}, 1 << 20),  # one socket for every query: 1 MiB
    ({"udp_max_queries": 200}, 1 << 20),
    ({"udp_max_queries": 64}, "kernel"),
    ({"receive_buffer": 1 << 19}, 1 << 19),  # a size given is applied whatever the socket carries
    ({"udp_max_queries": 0, "receive_buffer": None}, "kernel"),
])
async def test_receive_buffer_grows_only_for_sockets_that_carry_many_queries(
        options: dict[str, Any], expected: object) -> None:
    import socket

    async with upstream("stub") as (server, lab):
        lab.stub.faults.drop_rate = 1.0  # type: ignore[union-attr]  # the query stays open, and so does its socket
        backend = CaresBackend([server], **options)
        try:
            task = asyncio.ensure_future(backend.resolve(query("rcvbuf.cares.test.", "A", timeout=2)))
            while backend._channel is None or not backend._channel.readers:  # noqa: ASYNC110 - c-ares's own socket callback
                await asyncio.sleep(0.005)
            fd = next(iter(backend._channel.readers))
            with socket.socket(fileno=os.dup(fd)) as sock:
                size = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            await backend.aclose()
    if expected == "kernel":
        assert size == _sysctl("net/core/rmem_default")
    else:  # Linux reports twice the size asked (its bookkeeping share), the size capped at rmem_max
        assert isinstance(expected, int)
        assert size == 2 * min(expected, _sysctl("net/core/rmem_max"))


@pytest.mark.parametrize("epoll", [True, False], ids=["epoll", "loop-per-socket"])
async def test_fresh_sockets_cost_no_loop_registration_each(epoll: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh socket every 4 queries: with epoll the loop watches one descriptor for all of
    them (it watched each socket itself before: an ``add_reader`` and a ``remove_reader`` per
    socket); the portable fallback still does. Either way, UDP and TCP answers arrive, every
    closed socket is unwatched, and nothing is watched after ``aclose``."""
    monkeypatch.setattr(_fdwatch, "EPOLL", epoll)
    loop = asyncio.get_running_loop()
    registered: list[int] = []
    add_reader = loop.add_reader

    def counting_add_reader(fd: Any, callback: Callable[..., object], *args: Any) -> None:
        if type(getattr(callback, "__self__", None)).__module__.startswith("asyncresolve.backends"):
            registered.append(fd)
        add_reader(fd, callback, *args)

    monkeypatch.setattr(loop, "add_reader", counting_add_reader)
    watch = await _churn_sockets_and_tcp()
    if epoll:
        assert isinstance(watch, _fdwatch.EpollWatch)
        assert len(registered) == 1
    else:
        assert isinstance(watch, _fdwatch.LoopWatch)
        assert len(registered) >= 10  # 40 UDP queries, 4 per socket, and a TCP connection


def test_fresh_sockets_and_tcp_on_uvloop() -> None:
    import uvloop  # a dev dependency: missing, it fails the test

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        watch = runner.run(_churn_sockets_and_tcp())
    assert isinstance(watch, _fdwatch.EpollWatch)


async def _churn_sockets_and_tcp() -> _fdwatch.LoopWatch | _fdwatch.EpollWatch:
    """40 lookups (10 sockets) and one over TCP; checks the answers and the watched sockets,
    and returns the channel's watcher, closed."""
    async with upstream("stub") as (server, lab):
        backend = CaresBackend([server], edns=False)
        try:
            for i in range(40):
                answer = await backend.resolve(query(f"h{i}.bulk.test.", "A"))
                assert [r.address for r in answer.records] == [f"10.1.0.{i}"]  # type: ignore[attr-defined]
            medium = await backend.resolve(query("medium.cares.test.", "TXT"))  # over 512 bytes: TCP
            assert [r.strings for r in medium.records] == [MEDIUM_STRINGS]  # type: ignore[attr-defined]
            channel = backend._channel
            assert channel is not None
            watch = channel._watch
            assert watch is not None
            assert len(channel.readers) <= 2  # the last UDP socket and the TCP connection at most
            for fd in channel.readers:
                os.fstat(fd)  # open: a closed socket is no longer watched
        finally:
            await backend.aclose()
        assert ("medium.cares.test.", "tcp") in {(q.name, q.protocol) for q in lab.stub.queries}  # type: ignore[union-attr]
    assert channel._watch is None
    assert not watch.readers  # nothing watched after aclose
    if isinstance(watch, _fdwatch.EpollWatch):
        assert watch._epoll.closed
    return watch


def _sysctl(path: str) -> int:
    with open(f"/proc/sys/{path}") as file:
        return int(file.read())


def test_receive_buffer_must_be_auto_none_or_a_size() -> None:
    for bad in (-1, "big", 1.5, True):
        with pytest.raises(ValueError, match="receive_buffer"):
            CaresBackend(["127.0.0.1"], receive_buffer=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["sockets", "thread"])
async def test_every_deadline_kept_by_one_sweep_whatever_the_order(mode: str) -> None:
    """Deadlines go into one heap swept by one timer: a short deadline that comes after long
    ones must re-arm the sweep earlier, and answered queries must not hold it back."""
    async with upstream("stub") as (server, lab):
        backend = CaresBackend([server], timeout=2.0, tries=4, loop_mode=mode)  # type: ignore[arg-type]
        try:
            answered = await asyncio.gather(*(backend.resolve(query(f"h{i}.bulk.test.", "A", timeout=0.5))
                                              for i in range(50)))
            assert len(answered) == 50
            lab.stub.faults.drop_rate = 1.0  # type: ignore[union-attr]
            start = time.monotonic()

            async def timed(name: str, budget: float) -> tuple[float, float]:
                asked = query(name, "A", timeout=budget)
                late = timer_lateness(asked.deadline)
                with pytest.raises(ResolveTimeout):
                    await backend.resolve(asked)
                return time.monotonic() - start, late()

            slow = asyncio.ensure_future(timed("slow.bulk.test.", 0.6))
            await asyncio.sleep(0.02)
            fast = asyncio.ensure_future(timed("fast.bulk.test.", 0.1))
            (fast_elapsed, fast_late), (slow_elapsed, slow_late) = await fast, await slow
            assert 0.1 <= fast_elapsed <= 0.02 + 0.1 + 0.06 + fast_late, (fast_elapsed, fast_late)
            assert 0.6 - 0.01 <= slow_elapsed <= 0.6 + 0.06 + slow_late, (slow_elapsed, slow_late)
            channel = backend._channel
            assert channel is not None
            assert not channel.pending
            assert not channel._deadlines
            assert channel._sweep is None
        finally:
            await backend.aclose()


async def test_answered_queries_do_not_pile_up_in_the_deadline_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answered queries leave their entry in the heap until the sweep reaches it; with long
    deadlines the heap is compacted instead of growing with every query until then."""
    import asyncresolve.backends.cares as cares

    monkeypatch.setattr(cares, "_HEAP_SLACK", 16)
    async with upstream("stub") as (server, _lab):
        backend = CaresBackend([server])
        try:
            for batch in range(4):
                answers = await asyncio.gather(*(backend.resolve(query(f"h{i}.bulk.test.", "A", timeout=600))
                                                 for i in range(batch * 50, batch * 50 + 50)))
                assert len(answers) == 50
            channel = backend._channel
            assert channel is not None
            assert not channel.pending
            assert len(channel._deadlines) <= 50 + 16 + 1, len(channel._deadlines)
        finally:
            await backend.aclose()


@pytest.mark.parametrize(("fault", "rcode"), [("servfail", "SERVFAIL"), ("refuse", "REFUSED")])
async def test_servfail_and_refused_keep_the_rcode(fault: str, rcode: str) -> None:
    async with upstream("stub") as (server, lab):
        setattr(lab.stub.faults, fault, True)  # type: ignore[union-attr]
        backend = CaresBackend([server], tries=2)
        try:
            start = time.monotonic()
            with pytest.raises(ServFail) as err:
                await backend.resolve(query("a.cares.test.", "A"))
            assert time.monotonic() - start < 0.5  # a reply, not a timeout
        finally:
            await backend.aclose()
    assert err.value.rcode == rcode
    assert err.value.source == "cares"


async def test_servfail_through_unbound() -> None:
    async with upstream("unbound") as (server, lab):
        lab.server_for("cares.test.").faults.servfail = True
        backend = CaresBackend([server], tries=1)
        try:
            with pytest.raises(ServFail) as err:
                await backend.resolve(query("a.cares.test.", "A", timeout=8.0))
        finally:
            await backend.aclose()
    assert err.value.rcode == "SERVFAIL"


async def test_connection_refused_is_a_network_error() -> None:
    address = random_loopback_address()
    backend = CaresBackend([f"{address}:{free_port(address)}"])  # nothing listens there
    try:
        start = time.monotonic()
        with pytest.raises(NetworkError) as err:
            await backend.resolve(query("a.cares.test.", "A"))
        assert time.monotonic() - start < 0.5
    finally:
        await backend.aclose()
    assert err.value.source == "cares"


async def test_bad_name_and_unsupported_type() -> None:
    backend = CaresBackend(["127.0.0.1:9"])
    try:
        with pytest.raises(InvalidName):
            await backend.resolve(query("x" * 64 + ".cares.test.", "A"))
        with pytest.raises(NotMine):
            await backend.resolve(query("a.cares.test.", "DNSKEY"))
    finally:
        await backend.aclose()
    assert not backend.supports("DNSKEY")
    assert not backend.supports("ANY")
    assert {"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA", "NAPTR", "HTTPS",
            "TLSA", "URI"} == set(backend.supported_types or ())


@pytest.mark.parametrize("mode", ["sockets", "thread"])
async def test_cancel_detaches_the_query_without_leaking(mode: str, eventually: Any) -> None:
    async with upstream("stub") as (server, lab):
        lab.stub.faults.drop_rate = 1.0  # type: ignore[union-attr]
        backend = CaresBackend([server], timeout=0.1, tries=1, loop_mode=mode)  # type: ignore[arg-type]
        try:
            task = asyncio.ensure_future(backend.resolve(query("a.cares.test.", "A")))
            await eventually(lambda: backend._channel is not None and backend._channel.pending)
            channel = backend._channel
            assert channel is not None
            assert len(channel.pending) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not channel.pending
            # c-ares gives up on its own (0.1 s x 1 try); the late callback finds nothing.
            await asyncio.sleep(0.4)
            assert not channel.pending
            if mode == "sockets":
                assert channel._tick is None  # nothing left in flight inside c-ares
            # The channel still works.
            lab.stub.faults.drop_rate = 0.0  # type: ignore[union-attr]
            answer = await backend.resolve(query("aaaa.cares.test.", "AAAA"))
            assert answer.addresses == ["2001:db8::1"]
        finally:
            await backend.aclose()


async def test_aclose_fails_pending_queries_and_refuses_new_ones(eventually: Any) -> None:
    async with upstream("stub") as (server, lab):
        lab.stub.faults.drop_rate = 1.0  # type: ignore[union-attr]
        backend = CaresBackend([server])
        task = asyncio.ensure_future(backend.resolve(query("a.cares.test.", "A")))
        await eventually(lambda: backend._channel is not None and backend._channel.pending)
        await backend.aclose()
        with pytest.raises(ResolverClosed):
            await task
        with pytest.raises(ResolverClosed):
            await backend.resolve(query("a.cares.test.", "A"))
        await backend.aclose()  # idempotent


# -- concurrency, caches, configuration -----------------------------------------------------

@pytest.mark.parametrize("mode", ["sockets", "thread"])
@pytest.mark.parametrize("kind", ["stub", "unbound"])
async def test_1000_concurrent_distinct_names(kind: str, mode: str) -> None:
    async with upstream(kind) as (server, lab):
        resolver = Resolver(
            # c-ares (>= 1.22) times out each try after a multiple of the latency it measured, so
            # after fast first answers a burst that a loaded machine serves slowly can spend 3
            # tries in a few seconds: enough tries that the 15 s deadline is what bounds it
            backends=[CaresBackend([server], loop_mode=mode, tries=10)],  # type: ignore[arg-type]
            cache=TTLCache(), timeout=15.0,
        )
        try:
            answers = await asyncio.gather(*(resolver.resolve(f"h{i}.bulk.test", "A") for i in range(BULK)))
        finally:
            await resolver.aclose()
        for i, answer in enumerate(answers):
            assert answer.name == f"h{i}.bulk.test."
            assert answer.addresses == [f"10.1.{i // 256}.{i % 256}"]
        if kind == "stub":
            asked = {q.name for q in lab.stub.queries}  # type: ignore[union-attr]
            assert {f"h{i}.bulk.test." for i in range(BULK)} <= asked


async def test_c_ares_query_cache_is_off_by_default() -> None:
    async with upstream("stub") as (server, lab):
        stub = lab.stub
        assert stub is not None
        for qcache_max_ttl, expected in ((0, 2), (300, 1)):
            backend = CaresBackend([server], qcache_max_ttl=qcache_max_ttl)
            name = f"a{qcache_max_ttl}.bulk.test."  # distinct per round: no earlier state
            try:
                stub.reset_counters()
                for _ in range(2):
                    with pytest.raises(NXDomain):
                        await backend.resolve(query(name, "A"))
                stub.reset_counters()
                for _ in range(2):
                    await backend.resolve(query(f"h{qcache_max_ttl + 7}.bulk.test.", "A"))
                assert stub.query_count == expected
            finally:
                await backend.aclose()


async def test_nameservers_from_resolv_conf(tmp_path: Path) -> None:
    async with upstream("stub") as (_server, lab):
        host, port = lab.stub_server
        conf = tmp_path / "resolv.conf"
        conf.write_text(f"# test\nsearch example.invalid\nnameserver {host}\noptions ndots:2\n")
        backend = CaresBackend(resolv_conf=conf, port=port)
        assert backend.nameservers is None
        try:
            answer = await backend.resolve(query("a.cares.test.", "A"))
        finally:
            await backend.aclose()
        assert sorted(answer.addresses) == ["192.0.2.1", "192.0.2.2"]
        assert backend.nameservers == [f"{host}:{port}"]


def test_read_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53 # local\n; comment\nnameserver ::1\nnameserver bogus\n"
                    "nameserver fe80::1%lo\ndomain x\n")
    assert read_resolv_conf(str(conf)) == ["127.0.0.53", "::1", "fe80::1%lo"]
    assert read_resolv_conf(str(tmp_path / "missing")) == ["127.0.0.1"]


def test_nameserver_forms() -> None:
    assert _server_csv(["127.0.0.1", "127.0.0.2:5353", ("127.0.0.3", 54), "::1", "[::1]:5300"], 53) == (
        "127.0.0.1:53,127.0.0.2:5353,127.0.0.3:54,[::1]:53,[::1]:5300"
    )
    for bad, why in ((["localhost"], "must be an IP address"), (["127.0.0.1:0"], "bad port"),
                     (["127.0.0.1:70000"], "bad port"), ([], "no nameservers")):
        with pytest.raises(ValueError, match=why):
            _server_csv(bad, 53)
    with pytest.raises(ValueError, match="loop_mode must be 'sockets' or 'thread'"):
        CaresBackend(["127.0.0.1"], loop_mode="poll")  # type: ignore[arg-type]
    assert CaresBackend(["127.0.0.1:5353"]).nameservers == ["127.0.0.1:5353"]


async def test_ipv6_loopback_server() -> None:
    async with DNSLab(ZONES) as lab:
        address = "::1"
        zones = {origin: text for origin, text in lab.zones.items() if origin != "."}
        require_peer("nsd")
        async with NSD(zones, address=address, port=free_port(address)) as nsd:
            backend = CaresBackend([f"[::1]:{nsd.endpoint[1]}"])
            try:
                answer = await backend.resolve(query("aaaa.cares.test.", "AAAA"))
            finally:
                await backend.aclose()
    assert answer.addresses == ["2001:db8::1"]
