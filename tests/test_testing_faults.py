"""Each fault of ``asyncresolve.testing.Faults``, observed from a client."""

from __future__ import annotations

import asyncio
import time

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from asyncresolve.testing import DEFAULT_POISON, AuthServer, DNSLab, Faults, QueryRecord
from asyncresolve.testing.addresses import LoopbackAllocator

ZONE = """
@    3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300
@    3600 IN NS  ns1
ns1  3600 IN A   192.0.2.1
www  60   IN A   192.0.2.10
"""


@pytest.fixture
async def server():
    allocator = LoopbackAllocator()
    host, alt = allocator.allocate(), allocator.allocate()
    async with AuthServer({"example.test.": ZONE}, host, 0, name="ns1.example.test.", alt_host=alt) as srv:
        yield srv


def www() -> dns.message.Message:
    return dns.message.make_query("www.example.test.", "A")


async def udp(server: AuthServer, q: dns.message.Message, timeout: float = 1.0, **kw) -> dns.message.Message:
    return await dns.asyncquery.udp(q, server.host, port=server.port, timeout=timeout, **kw)


async def raw_udp(address: tuple[str, int], wire: bytes, timeout: float = 1.0) -> tuple[bytes, tuple[str, int]] | None:
    """Send *wire*; the first datagram back and where it came from (any source), or None."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[tuple[bytes, tuple[str, int]]] = loop.create_future()

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
            if not got.done():
                got.set_result((data, addr))

    # not connected: replies from any address are received
    transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    try:
        transport.sendto(wire, address)
        return await asyncio.wait_for(got, timeout)
    except TimeoutError:
        return None
    finally:
        transport.close()


async def test_no_faults_by_default(server: AuthServer) -> None:
    assert not server.faults.active
    r = await udp(server, www())
    assert r.answer[0][0].address == "192.0.2.10"


async def test_drop_all(server: AuthServer) -> None:
    server.faults.drop_rate = 1.0
    with pytest.raises(dns.exception.Timeout):
        await udp(server, www(), timeout=0.2)
    with pytest.raises(dns.exception.Timeout):
        await dns.asyncquery.tcp(www(), server.host, port=server.port, timeout=0.2)
    # received and counted, just not answered
    assert server.query_count == 2
    assert [q.protocol for q in server.queries] == ["udp", "tcp"]
    server.faults.drop_rate = 0.0
    assert (await udp(server, www())).answer


def test_drop_rate_is_deterministic_with_a_seed() -> None:
    a, b = Faults(drop_rate=0.3), Faults(drop_rate=0.3)
    a.seed(42)
    b.seed(42)
    decisions_a = [a.should_drop() for _ in range(2000)]
    decisions_b = [b.should_drop() for _ in range(2000)]
    assert decisions_a == decisions_b
    assert 500 < sum(decisions_a) < 700
    b.seed(43)
    assert [b.should_drop() for _ in range(2000)] != decisions_a


async def test_partial_drop_rate_over_the_network(server: AuthServer) -> None:
    server.faults.drop_rate = 0.5
    server.faults.seed(1)
    expected = Faults(drop_rate=0.5)
    expected.seed(1)
    plan = [expected.should_drop() for _ in range(8)]
    outcomes = []
    for _ in range(8):
        try:
            await udp(server, www(), timeout=0.15)
            outcomes.append(False)
        except dns.exception.Timeout:
            outcomes.append(True)
    assert outcomes == plan
    assert 0 < sum(plan) < 8


async def test_delay_udp_and_tcp(server: AuthServer) -> None:
    server.faults.delay = 0.3
    start = time.monotonic()
    await udp(server, www())
    assert time.monotonic() - start >= 0.29
    start = time.monotonic()
    await dns.asyncquery.tcp(www(), server.host, port=server.port, timeout=2)
    assert time.monotonic() - start >= 0.29
    with pytest.raises(dns.exception.Timeout):
        await udp(server, www(), timeout=0.1)


@pytest.mark.parametrize(("fault", "rcode"), [("servfail", dns.rcode.SERVFAIL), ("refuse", dns.rcode.REFUSED)])
async def test_rcode_faults(server: AuthServer, fault: str, rcode: dns.rcode.Rcode) -> None:
    setattr(server.faults, fault, True)
    r = await udp(server, www())
    assert r.rcode() == rcode
    assert r.answer == []
    assert not r.flags & dns.flags.AA


async def test_truncate_forces_tcp(server: AuthServer) -> None:
    server.faults.truncate = True
    r = await udp(server, www(), raise_on_truncation=False)
    assert r.flags & dns.flags.TC
    assert r.answer == []
    r, used_tcp = await dns.asyncquery.udp_with_fallback(www(), server.host, port=server.port, timeout=1)
    assert used_tcp
    assert r.answer[0][0].address == "192.0.2.10"
    assert [q.protocol for q in server.queries] == ["udp", "udp", "tcp"]


async def test_wrong_id(server: AuthServer) -> None:
    server.faults.wrong_id = True
    q = www()
    got = await raw_udp(server.address, q.to_wire())
    assert got is not None
    reply = dns.message.from_wire(got[0])
    assert reply.id != q.id
    assert reply.answer
    assert not q.is_response(reply)


async def test_wrong_question(server: AuthServer) -> None:
    server.faults.wrong_question = True
    with pytest.raises(dns.query.BadResponse):
        await udp(server, www())
    got = await raw_udp(server.address, www().to_wire())
    assert got is not None
    assert dns.message.from_wire(got[0]).question[0].name == dns.name.from_text("x-wrong.www.example.test.")


async def test_malformed(server: AuthServer) -> None:
    server.faults.malformed = True
    q = www()
    got = await raw_udp(server.address, q.to_wire())
    assert got is not None
    data = got[0]
    assert len(data) == 14
    assert int.from_bytes(data[:2], "big") == q.id
    with pytest.raises(dns.exception.FormError):
        dns.message.from_wire(data)


async def test_reply_from_other_address(server: AuthServer) -> None:
    server.faults.other_source = True
    got = await raw_udp(server.address, www().to_wire())
    assert got is not None
    assert got[1][0] == server.alt_host != server.host
    assert dns.message.from_wire(got[0]).answer
    # dnspython notices the spoofed source
    with pytest.raises(dns.query.UnexpectedSource):
        await udp(server, www())


async def test_poison_in_additional_and_answer(server: AuthServer) -> None:
    server.faults.poison_with()
    r = await udp(server, www())
    assert [rr.to_text() for rr in r.additional] == [DEFAULT_POISON]
    assert r.answer[0][0].address == "192.0.2.10"
    server.faults.poison_with("www.other.test. 86400 IN A 203.0.113.9", section="answer")
    r = await udp(server, www())
    assert [rr.to_text() for rr in r.answer] == [
        "www.example.test. 60 IN A 192.0.2.10",
        "www.other.test. 86400 IN A 203.0.113.9",
    ]


async def test_lame_gives_upward_referral(server: AuthServer) -> None:
    server.faults.lame = True
    r = await udp(server, www())
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.flags & dns.flags.AA
    assert r.answer == []
    assert r.authority[0].name == dns.name.root
    assert r.authority[0].rdtype == dns.rdatatype.NS


async def test_faults_switch_at_run_time_and_reset(server: AuthServer) -> None:
    server.faults.servfail = True
    assert (await udp(server, www())).rcode() == dns.rcode.SERVFAIL
    server.faults.reset()
    assert not server.faults.active
    assert (await udp(server, www())).rcode() == dns.rcode.NOERROR


async def test_counters_and_reset(server: AuthServer) -> None:
    for _ in range(3):
        await udp(server, www())
    await udp(server, dns.message.make_query("WWW.Example.TEST.", "AAAA"))
    assert server.query_count == 4
    assert server.queries[-1] == QueryRecord("ns1.example.test.", "www.example.test.", "AAAA", "udp")
    server.reset_counters()
    assert server.query_count == 0
    assert server.queries == []


async def test_lab_fault_on_one_server_and_second_server_still_answers() -> None:
    zones = {"example.test.": "www 60 IN A 192.0.2.10"}
    async with DNSLab(zones, servers_per_zone={"example.test.": 2}, stub=False) as lab:
        first, second = lab.servers_for("example.test.")
        first.faults.drop_rate = 1.0
        q = www()
        with pytest.raises(dns.exception.Timeout):
            await dns.asyncquery.udp(q, first.host, port=lab.port, timeout=0.2)
        r = await dns.asyncquery.udp(q, second.host, port=lab.port, timeout=1)
        assert r.answer[0][0].address == "192.0.2.10"
        assert [(e.server, e.name) for e in lab.queries] == [
            (first.name, "www.example.test."),
            (second.name, "www.example.test."),
        ]
        # lame fault in a lab refers upward to the lab's own root servers
        second.faults.lame = True
        r = await dns.asyncquery.udp(q, second.host, port=lab.port, timeout=1)
        assert [rd.target.to_text() for rd in r.authority[0]] == ["a.root-servers.lab."]
        lab.reset_faults()
        lab.reset_counters()
        assert lab.queries == []
        assert lab.query_count == 0
        assert (await dns.asyncquery.udp(q, first.host, port=lab.port, timeout=1)).answer
