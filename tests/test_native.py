"""``NativeBackend``: the pure-Python stub on the native codec, against c-ares over the whole lab."""

from __future__ import annotations

import asyncio
import os
import time

import dns.message
import dns.rrset
import pytest
from native_lab import LAB_QUESTIONS, LAB_ZONES

from asyncresolve import Resolver
from asyncresolve.backends import CaresBackend, NativeBackend
from asyncresolve.backends.base import Query
from asyncresolve.errors import NetworkError, NoAnswer, NXDomain, ResolveError, ResolverClosed, ResolveTimeout, ServFail
from asyncresolve.testing import DNSLab

TYPES_BOTH_ANSWER = ("A", "AAAA", "MX", "TXT", "SRV", "NS", "SOA", "CNAME", "CAA")


def summary(result: object) -> tuple:
    """What both backends must agree on (record order aside: servers may rotate RRsets)."""
    if isinstance(result, BaseException):
        if isinstance(result, (NXDomain, NoAnswer)):
            soa = result.soa.text if result.soa is not None else None
            return (type(result).__name__, result.ttl, soa)
        if isinstance(result, ServFail):
            return ("ServFail", result.rcode)
        return (type(result).__name__,)
    return ("answer", sorted(r.text for r in result.records), sorted(r.ttl for r in result.records),
            result.canonical_name, [c.text for c in result.cname_chain])


async def outcome(resolver: Resolver, name: str, rdtype: str) -> tuple:
    try:
        return summary(await resolver.resolve(name, rdtype))
    except ResolveError as exc:
        return summary(exc)


def lab_names(lab: DNSLab) -> list[str]:
    import dns.zone

    names = set()
    for origin, text in lab.zones.items():
        zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        names.update(name.to_text().lower() for name in zone.nodes)
    return sorted(names)


def stub(lab: DNSLab) -> list[str]:
    return [f"{lab.stub_server[0]}:{lab.stub_server[1]}"]


@pytest.mark.parametrize("faults", [{}, {"truncate": True}, {"servfail": True}, {"refuse": True}],
                         ids=["clean", "truncated", "servfail", "refused"])
async def test_same_results_as_cares_over_the_lab(faults):
    async with DNSLab(LAB_ZONES, seed=3) as lab:
        for key, value in faults.items():
            setattr(lab.stub.faults, key, value)
        native = Resolver([NativeBackend(stub(lab))], cache=None, timeout=3.0)
        cares = Resolver([CaresBackend(stub(lab))], cache=None, timeout=3.0)
        try:
            differences = []
            questions = [(n, t) for n, t in LAB_QUESTIONS if t in TYPES_BOTH_ANSWER]
            if not faults:  # and every name of every zone the lab serves (root, TLDs, lab.)
                questions += [(name, rdtype) for name in lab_names(lab) for rdtype in TYPES_BOTH_ANSWER]
            for name, rdtype in questions:
                mine, theirs = await outcome(native, name, rdtype), await outcome(cares, name, rdtype)
                if mine != theirs:
                    differences.append((name, rdtype, mine, theirs))
            assert not differences, differences
            stats = native.backends[0].stats
            assert stats.fast_parsed > 0
            if not faults:  # the usual-reply shortcut answered some of them, and was compared too
                assert 0 < stats.usual < stats.fast_parsed
            if faults.get("truncate"):
                assert stats.tcp_queries > 0
        finally:
            await native.aclose()
            await cares.aclose()


async def test_answer_semantics():
    async with DNSLab(LAB_ZONES) as lab, Resolver([NativeBackend(stub(lab))]) as r:
        answer = await r.resolve("alias.example.test", "A")
        assert answer.source == "native"
        assert sorted(answer.addresses) == ["192.0.2.10", "192.0.2.11"]
        assert answer.canonical_name == "www.example.test."
        assert [c.text for c in answer.cname_chain] == ["www.example.test."]
        assert answer.ttl == 60  # the least TTL of the chain and the records
        with pytest.raises(NXDomain) as nx:
            await r.resolve("missing.example.test", "A")
        assert nx.value.ttl == 300
        assert nx.value.soa is not None
        assert nx.value.soa.minimum == 300
        with pytest.raises(NoAnswer):
            await r.resolve("txt.example.test", "A")
        txt = await r.resolve("txt.example.test", "TXT")
        assert txt.records[0].strings == (b"v=spf1 -all", b"second")
        big = await r.resolve("big.example.test", "TXT")  # over 512 bytes with EDNS: no TC needed
        assert big.records[0].value == b"x" * 250
        # a cached negative answer keeps its TTL from the SOA
        with pytest.raises(NXDomain) as again:
            await r.resolve("missing.example.test", "A")
        assert again.value.from_cache


class EchoServer(asyncio.DatagramProtocol):
    """Answers every query with NODATA (question echoed, or lower-cased when ``lower``); keeps the queries."""

    def __init__(self, lower: bool = False) -> None:
        self.lower = lower
        self.queries: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.queries.append(data)
        response = dns.message.make_response(dns.message.from_wire(data))
        if self.lower:
            question = response.question[0]
            response.question[0] = dns.rrset.RRset(question.name.canonicalize(), question.rdclass, question.rdtype)
        self.transport.sendto(response.to_wire(), addr)


async def echo_server(lower: bool = False):
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(lambda: EchoServer(lower), local_addr=("127.0.0.1", 0))


@pytest.mark.parametrize("use_0x20", [True, False])
async def test_0x20_is_applied_and_the_echo_checked(use_0x20):
    transport, server = await echo_server(lower=False)
    port = transport.get_extra_info("sockname")[1]
    try:
        backend = NativeBackend([f"127.0.0.1:{port}"], use_0x20=use_0x20)
        async with Resolver([backend], cache=None) as r:
            for _ in range(20):
                with pytest.raises(NoAnswer):
                    await r.resolve("www.example.test", "A")
        spellings = {dns.message.from_wire(q).question[0].name.to_text() for q in server.queries}
        assert (len(spellings) > 5) == use_0x20, spellings  # random case on the wire
    finally:
        transport.close()
    # a server that does not echo the case exactly is not believed
    transport, server = await echo_server(lower=True)
    port = transport.get_extra_info("sockname")[1]
    try:
        backend = NativeBackend([f"127.0.0.1:{port}"], timeout=0.05, tries=1)
        async with Resolver([backend], cache=None, timeout=0.5) as r:
            with pytest.raises(ResolveTimeout):
                await r.resolve("www.example.test", "A")
        assert backend.stats.ignored >= 1
    finally:
        transport.close()


@pytest.mark.parametrize("fault", ["wrong_id", "wrong_question", "other_source", "malformed"])
async def test_forged_or_broken_replies_are_ignored(fault):
    async with DNSLab(LAB_ZONES) as lab:
        setattr(lab.stub.faults, fault, True)
        backend = NativeBackend(stub(lab), timeout=0.1, tries=2)
        async with Resolver([backend], cache=None, timeout=1.0) as r:
            with pytest.raises((ResolveTimeout, NetworkError)):
                await r.resolve("www.example.test", "A")
        if fault == "other_source":
            # the sockets are connected to the server: the kernel drops a reply from another port
            assert backend.stats.ignored + backend.stats.malformed == 0
        else:
            # (the malformed reply is cut inside its question, so it fails the question check)
            assert backend.stats.ignored + backend.stats.malformed > 0
        assert backend.stats.fast_parsed == 0


async def test_deadline_is_held_and_the_next_server_is_tried():
    async with DNSLab(LAB_ZONES) as lab:
        lab.stub.faults.delay = 2.0
        backend = NativeBackend(stub(lab), timeout=1.0)
        async with Resolver([backend], cache=None) as r:
            started = time.monotonic()
            with pytest.raises(ResolveTimeout):
                await r.resolve("www.example.test", "A", timeout=0.2)
            assert time.monotonic() - started < 0.6
        # a dead first server (nothing listens): the second answers after the first try's timeout
        lab.stub.faults.reset()
        dead = "127.0.0.1:9"
        backend = NativeBackend([dead, *stub(lab)], timeout=0.1)
        async with Resolver([backend], cache=None) as r:
            answer = await r.resolve("www.example.test", "A", timeout=2.0)
            assert answer.addresses
            assert backend.stats.retransmits >= 1


async def test_answered_or_cancelled_lookups_leave_nothing_in_the_timers():
    """A query leaves its first try's timer slot when its lookup ends: nothing of it stays alive
    for the garbage collector to walk until the try's timeout (1 s) would have expired."""
    async with DNSLab(LAB_ZONES) as lab:
        backend = NativeBackend(stub(lab), timeout=5.0)
        loop = asyncio.get_running_loop()
        answers = await asyncio.gather(*(backend.resolve(Query(f"t{i}.wild.example.test.", "A", loop.time() + 10))
                                         for i in range(50)))
        assert all(a.addresses == ["192.0.2.99"] for a in answers)
        assert backend._slots  # the slots themselves wait for the sweep...
        assert sum(len(slot) for _, slot in backend._slots) == 0  # ...empty
        lab.stub.faults.delay = 5.0
        task = asyncio.ensure_future(backend.resolve(Query("late.wild.example.test.", "A", loop.time() + 10)))
        await asyncio.sleep(0.05)
        assert sum(len(slot) for _, slot in backend._slots) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sum(len(slot) for _, slot in backend._slots) == 0
        await backend.aclose()


async def test_a_deadline_before_the_tries_timeout_is_kept_exactly_and_leaves_nothing_behind():
    """A bulk run's single try (the deadline comes before the try's timeout) waits in a timer
    slot, not in the heap: an answered query leaves nothing queued, an unanswered one still
    times out at its deadline, neither before it nor 5 ms after."""
    async with DNSLab(LAB_ZONES) as lab:
        backend = NativeBackend(stub(lab), timeout=5.0, tries=1)
        loop = asyncio.get_running_loop()
        answers = await asyncio.gather(*(backend.resolve(Query(f"t{i}.wild.example.test.", "A", loop.time() + 1.0))
                                         for i in range(50)))
        assert all(a.addresses == ["192.0.2.99"] for a in answers)
        assert not backend._early  # (it held the 50 queries until their deadline)
        assert sum(len(slot) for _, slot in backend._slots) == 0
        lab.stub.faults.drop_rate = 1.0
        overshoots = []
        for i in range(5):
            started = loop.time()
            deadline = started + 0.1 + 0.0013 * i  # anywhere in a 5 ms slot
            with pytest.raises(ResolveTimeout):
                await backend.resolve(Query(f"lost{i}.wild.example.test.", "A", deadline))
            overshoots.append(loop.time() - deadline)
        await backend.aclose()
    assert min(overshoots) >= 0
    assert max(overshoots) < 0.05


async def test_sockets_are_rerandomised():
    async with DNSLab(LAB_ZONES) as lab:
        backend = NativeBackend(stub(lab), sockets=2, udp_max_queries=5)
        async with Resolver([backend], cache=None) as r:
            await asyncio.gather(*(r.resolve(f"x{i}.wild.example.test", "A") for i in range(60)))
        assert backend.stats.sockets_opened >= 12
        assert not backend._all  # every socket closed with the resolver


async def test_close_fails_queries_in_flight_with_resolver_closed():
    async with DNSLab(LAB_ZONES) as lab:
        lab.stub.faults.delay = 5.0
        backend = NativeBackend(stub(lab))
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(backend.resolve(Query("www.example.test.", "A", loop.time() + 10)))
        await asyncio.sleep(0.05)
        await backend.aclose()
        with pytest.raises(ResolverClosed):
            await task
        with pytest.raises(ResolverClosed):
            await backend.resolve(Query("www.example.test.", "A", loop.time() + 10))


def test_survives_a_new_event_loop():
    with DNSLab(LAB_ZONES) as lab:
        backend = NativeBackend(stub(lab))
        resolver = Resolver([backend], cache=None)

        async def one() -> list[str]:
            return (await resolver.resolve("www.example.test", "A")).addresses

        assert asyncio.run(one())
        assert asyncio.run(one())  # a second loop: fresh sockets, same answers


def test_uvloop():
    import uvloop  # a dev dependency: missing, it fails the test
    with DNSLab(LAB_ZONES) as lab:
        async def run() -> tuple[list[str], int]:
            backend = NativeBackend(stub(lab))
            async with Resolver([backend], cache=None) as r:
                answers = await asyncio.gather(*(r.resolve(f"n{i}.wild.example.test", "A") for i in range(50)))
            return answers[0].addresses, backend.stats.fast_parsed

        addresses, fast = uvloop.run(run())
        assert addresses == ["192.0.2.99"]
        assert fast == 50


def test_bad_arguments():
    with pytest.raises(ValueError, match="nameserver must be an IP address"):
        NativeBackend(["not-an-ip"])
    with pytest.raises(ValueError, match="no nameservers"):
        NativeBackend([])
    with pytest.raises(ValueError, match="timeout must be > 0"):
        NativeBackend(["127.0.0.1"], timeout=0)
    assert NativeBackend(["::1", "[::1]:5353", ("127.0.0.1", 54)]).nameservers == [
        ("::1", 53), ("::1", 5353), ("127.0.0.1", 54)]


def test_cli_lookup_through_native():
    import json
    import subprocess
    import sys
    from pathlib import Path

    with DNSLab(LAB_ZONES) as lab:
        ip, port = lab.stub_server
        script = Path(sys.executable).with_name("asyncresolve")
        result = subprocess.run(
            [str(script), "lookup", "mail.example.test", "-t", "MX", "--backends", "native",
             "--nameserver", f"{ip}:{port}", "--json"],
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        data = data[0] if isinstance(data, list) else data
        assert data["source"] == "native"
        assert data["records"][0]["exchange"] == "mx1.example.test."


async def test_rotate_spreads_first_tries_and_keeps_every_retry():
    async with DNSLab(LAB_ZONES, record_queries=True) as lab:
        good = stub(lab)[0]
        backend = NativeBackend([good, f"{lab.stub_server[0]}:9"], rotate=True, timeout=0.05,
                                tries=2)
        async with Resolver([backend], cache=None, timeout=2.0) as r:
            for i in range(6):
                assert (await r.resolve(f"r{i}.wild.example.test", "A")).addresses == ["192.0.2.99"]
        # half the queries went to the dead server first, then on to the good one
        assert backend.stats.retransmits == 3


# -- off-path spoofing (RFC 5452): forgeries from the server's own address and port -------------
FORGED = "198.51.100.66"


class SlowSpoofedServer(asyncio.DatagramProtocol):
    """Answers each query after ``delay`` with 192.0.2.1; meanwhile floods the asker's port with
    ``per_query`` forged answers (198.51.100.66) from this very socket: random IDs ("port": the
    attacker knows the port), or the right ID with the name in lower case ("port+id")."""

    def __init__(self, mode: str, per_query: int = 400, delay: float = 0.05) -> None:
        import random

        self.mode = mode
        self.per_query = per_query
        self.delay = delay
        self.rng = random.Random(5452)
        self.ports: set[int] = set()
        self.sent = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        query = dns.message.from_wire(data)
        self.ports.add(addr[1])
        name = query.question[0].name
        forged = dns.message.make_response(query)
        forged.question = [dns.rrset.RRset(name.canonicalize(), 1, 1)]  # the attacker cannot know the case
        forged.answer.append(dns.rrset.from_text(name.canonicalize(), 300, "IN", "A", FORGED))
        template = bytearray(forged.to_wire())
        for _ in range(self.per_query):
            qid = query.id if self.mode == "port+id" else self.rng.randrange(65536)
            template[0:2] = qid.to_bytes(2, "big")
            self.transport.sendto(bytes(template), addr)
            self.sent += 1
        real = dns.message.make_response(query)
        real.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1"))
        asyncio.get_running_loop().call_later(self.delay, self.transport.sendto, real.to_wire(), addr)


async def spoof_run(mode: str, **options) -> tuple[int, int, int]:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(lambda: SlowSpoofedServer(mode),
                                                           local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    accepted = 0
    try:
        backend = NativeBackend([f"127.0.0.1:{port}"], timeout=2.0, **options)
        async with Resolver([backend], cache=None, timeout=5.0) as r:
            for i in range(20):
                answer = await r.resolve(f"h{i}-abcdefghij.spoofme.test", "A")
                accepted += FORGED in answer.addresses
    finally:
        transport.close()
    return accepted, server.sent, len(server.ports)


@pytest.mark.parametrize("mode", ["port", "port+id"])
async def test_no_forged_answer_accepted_with_the_port_known(mode):
    accepted, sent, ports = await spoof_run(mode)
    print(f"native, defaults, {mode}: {accepted}/20 forged answers accepted of {sent} forgeries, {ports} ports")
    assert sent == 20 * 400
    assert accepted == 0


async def test_spoofing_control_without_0x20_the_attack_lands():
    accepted, _, _ = await spoof_run("port+id", use_0x20=False)
    assert accepted == 20  # with the port and ID known and no 0x20, every forgery is the first reply


async def test_source_ports_are_spread():
    transport, server = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: SlowSpoofedServer("port", per_query=0, delay=0), local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        backend = NativeBackend([f"127.0.0.1:{port}"], udp_max_queries=16)
        async with Resolver([backend], cache=None) as r:
            for chunk in range(10):
                await asyncio.gather(*(r.resolve(f"p{chunk}-{i}.spoofme.test", "A") for i in range(100)))
    finally:
        transport.close()
    assert len(server.ports) > 50  # 1,000 queries from well over 50 random ports (16 queries a socket)


async def test_ipv6_nameserver():
    loop = asyncio.get_running_loop()
    try:
        transport, server = await loop.create_datagram_endpoint(lambda: EchoServer(), local_addr=("::1", 0))
    except OSError:
        if os.environ.get("CI"):
            raise  # CI machines have ::1: its absence is a failure there, not a skip
        pytest.skip("no IPv6 loopback here")
    port = transport.get_extra_info("sockname")[1]
    try:
        backend = NativeBackend([f"[::1]:{port}"])
        async with Resolver([backend], cache=None) as r:
            with pytest.raises(NoAnswer):  # the echo server answers NODATA
                await r.resolve("www.example.test", "AAAA")
        assert len(server.queries) == 1
        assert backend.stats.fast_parsed == 1
    finally:
        transport.close()


async def test_meta_types_are_not_mine():
    from asyncresolve.backends.base import NotMine

    backend = NativeBackend(["127.0.0.1:9"])
    assert not backend.supports("AXFR")
    assert not backend.supports("ANY")
    assert backend.supports("HTTPS")
    loop = asyncio.get_running_loop()
    with pytest.raises(NotMine):
        await backend.resolve(Query("example.test.", "AXFR", loop.time() + 1))
    await backend.aclose()
