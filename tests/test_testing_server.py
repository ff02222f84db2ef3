"""The authoritative server of ``asyncresolve.testing``, checked with real clients.

Every behaviour is checked with dnspython's query functions; the main ones also
with ``dig`` and ``kdig``.  The server listens on a random 127.x address.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from typing import Any

import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from asyncresolve.testing import AuthServer
from asyncresolve.testing.addresses import LoopbackAllocator
from asyncresolve.testing.peers import require_peer

BIG_TXT = "\n".join(f'big 300 IN TXT "{"x" * 60} record {i:02d}"' for i in range(12))  # ~900 bytes

EXAMPLE = f"""
$TTL 300
@        3600 IN SOA ns1 hostmaster 2024010101 7200 900 1209600 600
@        3600 IN NS  ns1
ns1           IN A   192.0.2.1
www      60   IN A   192.0.2.10
www      60   IN AAAA 2001:db8::10
mail          IN MX  10 mx1
mx1           IN A   192.0.2.25
alias         IN CNAME www
chain         IN CNAME alias
cross         IN CNAME www.other.test.
outside       IN CNAME www.elsewhere.invalid.
dangling      IN CNAME nothing
loop1         IN CNAME loop2
loop2         IN CNAME loop1
deep.ent      IN A   192.0.2.5
*.wild        IN A   192.0.2.42
*.wild        IN TXT "wildcard"
host.sub.wild IN A   192.0.2.43
child         IN NS  ns.child
child         IN NS  ns.elsewhere.invalid.
child         IN NS  ns1.other.test.
ns.child      IN A   192.0.2.53
dname         IN DNAME other.test.
{BIG_TXT}
"""

OTHER = """
@    300 IN SOA ns1 hostmaster 1 7200 900 1209600 900
@    300 IN NS  ns1
ns1  300 IN A   192.0.2.2
www  120 IN A   192.0.2.200
"""

ZONES = {"example.test.": EXAMPLE, "other.test.": OTHER}


@pytest.fixture
async def server():
    async with AuthServer(ZONES, LoopbackAllocator().allocate(), 0, name="test-server") as srv:
        yield srv


def query(name: str, rdtype: str = "A", **kw) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, **kw)


async def udp(server: AuthServer, q: dns.message.Message, **kw) -> dns.message.Message:
    return await dns.asyncquery.udp(q, server.host, port=server.port, timeout=2, **kw)


async def tcp(server: AuthServer, q: dns.message.Message) -> dns.message.Message:
    return await dns.asyncquery.tcp(q, server.host, port=server.port, timeout=2)


def texts(section: list[dns.rrset.RRset]) -> list[tuple[str, str, int, list[str]]]:
    return [
        (r.name.to_text(), dns.rdatatype.to_text(r.rdtype), r.ttl, sorted(rd.to_text() for rd in r)) for r in section
    ]


def flags(message: dns.message.Message) -> set[str]:
    return set(dns.flags.to_text(message.flags).split())


async def raw_udp(address: tuple[str, int], wire: bytes, timeout: float = 0.5) -> bytes | None:
    """Send raw bytes, return the first reply (or None on timeout)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Protocol, remote_addr=address)
    try:
        transport.sendto(wire)
        return await asyncio.wait_for(got, timeout)
    except TimeoutError:
        return None
    finally:
        transport.close()


# -- positive answers -------------------------------------------------------


async def test_answer_is_authoritative_with_zone_ttl(server: AuthServer) -> None:
    r = await udp(server, query("www.example.test.", "A"))
    assert r.rcode() == dns.rcode.NOERROR
    assert flags(r) == {"QR", "AA", "RD"}
    assert texts(r.answer) == [("www.example.test.", "A", 60, ["192.0.2.10"])]
    assert r.authority == []
    assert r.additional == []


async def test_any_returns_every_rrset(server: AuthServer) -> None:
    r = await udp(server, query("www.example.test.", "ANY"))
    assert sorted(t[1] for t in texts(r.answer)) == ["A", "AAAA"]


async def test_mx_answer_carries_target_address_in_additional(server: AuthServer) -> None:
    r = await udp(server, query("mail.example.test.", "MX"))
    assert texts(r.answer) == [("mail.example.test.", "MX", 300, ["10 mx1.example.test."])]
    assert texts(r.additional) == [("mx1.example.test.", "A", 300, ["192.0.2.25"])]


async def test_apex_ns_and_soa(server: AuthServer) -> None:
    ns = await udp(server, query("example.test.", "NS"))
    assert texts(ns.answer) == [("example.test.", "NS", 3600, ["ns1.example.test."])]
    assert texts(ns.additional) == [("ns1.example.test.", "A", 300, ["192.0.2.1"])]
    soa = await udp(server, query("example.test.", "SOA"))
    assert soa.answer[0][0].serial == 2024010101
    assert "AA" in flags(soa)


# -- negative answers (RFC 2308) --------------------------------------------


async def test_nxdomain_has_soa_with_ttl_min_of_soa_ttl_and_minimum(server: AuthServer) -> None:
    r = await udp(server, query("nope.example.test.", "A"))
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert "AA" in flags(r)
    assert r.answer == []
    # SOA TTL 3600, MINIMUM 600 -> 600.
    assert [(t[0], t[1], t[2]) for t in texts(r.authority)] == [("example.test.", "SOA", 600)]
    # other.test.: SOA TTL 300, MINIMUM 900 -> 300.
    r = await udp(server, query("nope.other.test.", "A"))
    assert [(t[0], t[1], t[2]) for t in texts(r.authority)] == [("other.test.", "SOA", 300)]


async def test_nodata_for_missing_type(server: AuthServer) -> None:
    r = await udp(server, query("www.example.test.", "MX"))
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer == []
    assert [(t[0], t[1], t[2]) for t in texts(r.authority)] == [("example.test.", "SOA", 600)]


async def test_empty_non_terminal_is_nodata_not_nxdomain(server: AuthServer) -> None:
    r = await udp(server, query("ent.example.test.", "A"))
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer == []
    assert r.authority[0].rdtype == dns.rdatatype.SOA


# -- wildcards (RFC 4592) ---------------------------------------------------


async def test_wildcard_synthesises_the_query_name(server: AuthServer) -> None:
    r = await udp(server, query("anything.wild.example.test.", "A"))
    assert texts(r.answer) == [("anything.wild.example.test.", "A", 300, ["192.0.2.42"])]
    assert "AA" in flags(r)
    r = await udp(server, query("a.b.c.wild.example.test.", "TXT"))
    assert texts(r.answer) == [("a.b.c.wild.example.test.", "TXT", 300, ['"wildcard"'])]
    r = await udp(server, query("anything.wild.example.test.", "MX"))
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer == []
    assert r.authority[0].rdtype == dns.rdatatype.SOA


async def test_no_wildcard_match_below_an_existing_empty_non_terminal(server: AuthServer) -> None:
    # sub.wild exists (as an empty non-terminal above host.sub.wild): it is NODATA, not the wildcard...
    r = await udp(server, query("sub.wild.example.test.", "A"))
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer == []
    # ...and its closest encloser has no "*" child, so below it is NXDOMAIN.
    r = await udp(server, query("x.sub.wild.example.test.", "A"))
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.answer == []


async def test_literal_wildcard_name(server: AuthServer) -> None:
    r = await udp(server, query("*.wild.example.test.", "A"))
    assert texts(r.answer) == [("*.wild.example.test.", "A", 300, ["192.0.2.42"])]


# -- CNAME and DNAME --------------------------------------------------------


async def test_cname_chain_followed_within_zone(server: AuthServer) -> None:
    r = await udp(server, query("chain.example.test.", "A"))
    assert texts(r.answer) == [
        ("chain.example.test.", "CNAME", 300, ["alias.example.test."]),
        ("alias.example.test.", "CNAME", 300, ["www.example.test."]),
        ("www.example.test.", "A", 60, ["192.0.2.10"]),
    ]
    assert "AA" in flags(r)
    assert r.rcode() == dns.rcode.NOERROR


async def test_cname_followed_into_another_zone_of_the_same_server(server: AuthServer) -> None:
    r = await udp(server, query("cross.example.test.", "A"))
    assert texts(r.answer) == [
        ("cross.example.test.", "CNAME", 300, ["www.other.test."]),
        ("www.other.test.", "A", 120, ["192.0.2.200"]),
    ]


async def test_cname_out_of_served_zones_is_not_followed(server: AuthServer) -> None:
    r = await udp(server, query("outside.example.test.", "A"))
    assert r.rcode() == dns.rcode.NOERROR
    assert texts(r.answer) == [("outside.example.test.", "CNAME", 300, ["www.elsewhere.invalid."])]


async def test_cname_to_missing_name_is_nxdomain_with_the_cname(server: AuthServer) -> None:
    r = await udp(server, query("dangling.example.test.", "A"))
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert texts(r.answer) == [("dangling.example.test.", "CNAME", 300, ["nothing.example.test."])]
    assert r.authority[0].rdtype == dns.rdatatype.SOA


async def test_cname_loop_terminates(server: AuthServer) -> None:
    r = await udp(server, query("loop1.example.test.", "A"))
    assert [t[0] for t in texts(r.answer)] == ["loop1.example.test.", "loop2.example.test."]


async def test_cname_query_type_gets_the_cname_only(server: AuthServer) -> None:
    r = await udp(server, query("alias.example.test.", "CNAME"))
    assert texts(r.answer) == [("alias.example.test.", "CNAME", 300, ["www.example.test."])]


async def test_dname_substitution_and_follow(server: AuthServer) -> None:
    r = await udp(server, query("www.dname.example.test.", "A"))
    assert texts(r.answer) == [
        ("dname.example.test.", "DNAME", 300, ["other.test."]),
        ("www.dname.example.test.", "CNAME", 300, ["www.other.test."]),
        ("www.other.test.", "A", 120, ["192.0.2.200"]),
    ]


# -- referrals --------------------------------------------------------------


async def test_referral_has_ns_in_authority_and_only_in_bailiwick_glue(server: AuthServer) -> None:
    for name in ("child.example.test.", "deep.below.child.example.test.", "ns.child.example.test."):
        r = await udp(server, query(name, "A"))
        assert r.rcode() == dns.rcode.NOERROR
        assert "AA" not in flags(r)
        assert r.answer == []
        assert texts(r.authority) == [
            (
                "child.example.test.",
                "NS",
                300,
                ["ns.child.example.test.", "ns.elsewhere.invalid.", "ns1.other.test."],
            )
        ]
        # ns1.other.test. is served by this server, but not in this zone's bailiwick: no glue for it.
        assert texts(r.additional) == [("ns.child.example.test.", "A", 300, ["192.0.2.53"])]


async def test_ds_at_a_cut_is_answered_by_the_parent(server: AuthServer) -> None:
    r = await udp(server, query("child.example.test.", "DS"))
    assert "AA" in flags(r)
    assert r.answer == []
    assert r.authority[0].name == dns.name.from_text("example.test.")


# -- truncation and EDNS ----------------------------------------------------


async def test_response_over_512_bytes_without_edns_is_truncated(server: AuthServer) -> None:
    r = await udp(server, query("big.example.test.", "TXT"), raise_on_truncation=False)
    assert "TC" in flags(r)
    assert r.answer == []
    assert r.edns == -1


async def test_edns_buffer_size_decides_truncation(server: AuthServer) -> None:
    r = await udp(server, query("big.example.test.", "TXT", use_edns=0, payload=4096))
    assert "TC" not in flags(r)
    assert len(r.answer[0]) == 12
    r = await udp(server, query("big.example.test.", "TXT", use_edns=0, payload=600), raise_on_truncation=False)
    assert "TC" in flags(r)
    assert r.answer == []


async def test_tcp_carries_the_whole_answer(server: AuthServer) -> None:
    r = await tcp(server, query("big.example.test.", "TXT"))
    assert "TC" not in flags(r)
    assert len(r.answer[0]) == 12


async def test_opt_is_echoed_with_our_payload_and_do_bit(server: AuthServer) -> None:
    r = await udp(server, query("www.example.test.", "A", use_edns=0, payload=4096, want_dnssec=True))
    assert r.edns == 0
    assert r.payload == 1232
    assert r.ednsflags & dns.flags.DO
    r = await udp(server, query("www.example.test.", "A"))
    assert r.edns == -1
    assert r.opt is None


async def test_unknown_edns_version_gets_badvers(server: AuthServer) -> None:
    r = await udp(server, query("www.example.test.", "A", use_edns=1))
    assert r.rcode() == dns.rcode.BADVERS
    assert r.edns == 0
    assert r.answer == []


# -- refusals and errors ----------------------------------------------------


async def test_zone_not_served_is_refused(server: AuthServer) -> None:
    r = await udp(server, query("www.example.org.", "A"))
    assert r.rcode() == dns.rcode.REFUSED
    assert "AA" not in flags(r)
    assert r.answer == []
    assert r.authority == []


async def test_other_opcodes_get_notimp(server: AuthServer) -> None:
    for opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS):
        q = query("example.test.", "SOA")
        q.set_opcode(opcode)
        r = dns.message.from_wire(await raw_udp(server.address, q.to_wire()) or b"")
        assert r.rcode() == dns.rcode.NOTIMP
        assert r.opcode() == opcode
        assert r.id == q.id


async def test_bad_question_counts_class_and_types(server: AuthServer) -> None:
    empty = dns.message.Message()
    r = await udp(server, empty)
    assert r.rcode() == dns.rcode.FORMERR
    two = query("www.example.test.", "A")
    two.question.append(dns.rrset.RRset(dns.name.from_text("mx1.example.test."), dns.rdataclass.IN, dns.rdatatype.A))
    r = dns.message.from_wire(await raw_udp(server.address, two.to_wire()) or b"")
    assert r.rcode() == dns.rcode.FORMERR
    r = await udp(server, query("version.bind.", "TXT", rdclass="CH"))
    assert r.rcode() == dns.rcode.REFUSED
    r = await tcp(server, query("example.test.", "AXFR"))
    assert r.rcode() == dns.rcode.REFUSED
    r = await udp(server, query("example.test.", "TKEY"))
    assert r.rcode() == dns.rcode.FORMERR


# -- robustness -------------------------------------------------------------


async def test_garbage_never_kills_the_udp_path(server: AuthServer) -> None:
    q = query("www.example.test.", "A")
    header_only = q.to_wire()[:12]  # claims one question, has none
    reply = await raw_udp(server.address, header_only)
    assert reply is not None
    r = dns.message.from_wire(reply)
    assert r.id == q.id
    assert r.rcode() == dns.rcode.FORMERR
    assert await raw_udp(server.address, b"\x01\x02\x03", timeout=0.2) is None  # shorter than a header
    response_wire = dns.message.make_response(q).to_wire()
    assert await raw_udp(server.address, response_wire, timeout=0.2) is None  # never answer a response
    for junk in (b"\xff" * 12, bytes(range(256)), b"\x00" * 512, q.to_wire() + b"trailing"):
        await raw_udp(server.address, junk, timeout=0.05)
    r = await udp(server, q)
    assert texts(r.answer) == [("www.example.test.", "A", 60, ["192.0.2.10"])]
    assert server.query_count == 8


async def test_tcp_partial_messages_and_pipelining(server: AuthServer) -> None:
    # a lone byte of length prefix, then close
    reader, writer = await asyncio.open_connection(*server.address)
    writer.write(b"\x00")
    writer.close()
    await writer.wait_closed()
    # a length prefix promising more than is sent, then close
    reader, writer = await asyncio.open_connection(*server.address)
    writer.write(b"\x00\x64" + b"\x12" * 10)
    writer.close()
    await writer.wait_closed()
    # garbage of the announced length: FORMERR, connection stays usable for a real query after it
    reader, writer = await asyncio.open_connection(*server.address)
    q1, q2 = query("www.example.test.", "A"), query("mx1.example.test.", "A")
    garbage = q1.to_wire()[:12] + b"\xff\xff"
    for wire in (garbage, q1.to_wire(), q2.to_wire()):
        writer.write(len(wire).to_bytes(2, "big") + wire)
    await writer.drain()
    replies = []
    for _ in range(3):
        length = int.from_bytes(await reader.readexactly(2), "big")
        replies.append(dns.message.from_wire(await reader.readexactly(length)))
    writer.close()
    await writer.wait_closed()
    assert replies[0].rcode() == dns.rcode.FORMERR
    assert texts(replies[1].answer) == [("www.example.test.", "A", 60, ["192.0.2.10"])]
    assert texts(replies[2].answer) == [("mx1.example.test.", "A", 300, ["192.0.2.25"])]
    r = await tcp(server, q1)
    assert r.answer


async def test_many_concurrent_queries_all_answered(server: AuthServer) -> None:
    names = [f"host{i}.wild.example.test." for i in range(300)]
    replies = await asyncio.gather(*(udp(server, query(n, "A")) for n in names))
    assert [r.answer[0].name.to_text() for r in replies] == names
    tcp_replies = await asyncio.gather(*(tcp(server, query(n, "A")) for n in names[:40]))
    assert all(r.answer[0][0].address == "192.0.2.42" for r in tcp_replies)


async def test_tcp_connections_are_bounded(eventually: Any) -> None:
    host = LoopbackAllocator().allocate()
    async with AuthServer(ZONES, host, 0, max_tcp_connections=2) as srv:
        held = [await asyncio.open_connection(*srv.address) for _ in range(2)]
        await eventually(lambda: len(srv._connections) == 2)
        reader, writer = await asyncio.open_connection(*srv.address)
        assert await asyncio.wait_for(reader.read(), 1) == b""  # closed at once
        writer.close()
        for _, w in held:
            w.close()
        await eventually(lambda: not srv._connections)
        assert (await tcp(srv, query("www.example.test."))).answer


def test_stop_is_clean_with_open_connections_and_delayed_replies(recwarn: pytest.WarningsRecorder) -> None:
    async def scenario() -> None:
        srv = AuthServer(ZONES, LoopbackAllocator().allocate(), 0)
        await srv.start()
        _reader, writer = await asyncio.open_connection(*srv.address)
        writer.write(b"\x00\x40")  # a half-sent query keeps the handler waiting
        await writer.drain()
        srv.faults.delay = 5
        await raw_udp(srv.address, query("www.example.test.").to_wire(), timeout=0.05)
        await asyncio.sleep(0.05)
        await srv.stop()
        writer.close()
        assert not srv.running
        # the port is free again
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(srv.address)

    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    try:
        loop.run_until_complete(scenario())
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        assert pending == []
    finally:
        loop.close()
    assert not [w for w in recwarn if "never awaited" in str(w.message) or "pending" in str(w.message)]


# -- with dig and kdig ------------------------------------------------------


def run_tool(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, timeout=20, check=True).stdout


@pytest.fixture
def needs_dig() -> None:
    require_peer("dig")


@pytest.fixture
def needs_kdig() -> None:
    require_peer("kdig")


def answer_lines(output: str) -> list[str]:
    lines, in_answer = [], False
    for line in output.splitlines():
        if line.startswith(";; ANSWER SECTION") or line.startswith(";; ANSWER SECTION:"):
            in_answer = True
            continue
        if in_answer:
            if not line.strip() or line.startswith(";;"):
                break
            lines.append(" ".join(line.split()))
    return lines


@pytest.mark.usefixtures("needs_dig")
async def test_dig_sees_authoritative_answers_and_negative_answers(server: AuthServer) -> None:
    base = ["dig", f"@{server.host}", "-p", str(server.port), "+norecurse", "+time=2", "+tries=1"]
    out = await asyncio.to_thread(run_tool, *base, "www.example.test.", "A")
    assert "status: NOERROR" in out
    assert "flags: qr aa;" in out
    assert answer_lines(out) == ["www.example.test. 60 IN A 192.0.2.10"]
    out = await asyncio.to_thread(run_tool, *base, "nope.example.test.", "A")
    assert "status: NXDOMAIN" in out
    assert "example.test.\t\t600\tIN\tSOA" in out or "example.test. 600 IN SOA" in " ".join(out.split())
    out = await asyncio.to_thread(run_tool, *base, "x.wild.example.test.", "TXT")
    assert answer_lines(out) == ['x.wild.example.test. 300 IN TXT "wildcard"']
    out = await asyncio.to_thread(run_tool, *base, "www.example.org.", "A")
    assert "status: REFUSED" in out
    out = await asyncio.to_thread(run_tool, *base, "ns.child.example.test.", "A")
    assert "flags: qr;" in out
    assert "ANSWER: 0, AUTHORITY: 3, ADDITIONAL: 2" in out


@pytest.mark.usefixtures("needs_dig")
async def test_dig_retries_truncated_answer_over_tcp(server: AuthServer) -> None:
    out = await asyncio.to_thread(
        run_tool, "dig", f"@{server.host}", "-p", str(server.port), "+noedns", "+time=2", "big.example.test.", "TXT"
    )
    assert "Truncated, retrying in TCP mode" in out
    assert len(answer_lines(out)) == 12
    assert [q.protocol for q in server.queries] == ["udp", "tcp"]


@pytest.mark.usefixtures("needs_kdig")
async def test_kdig_over_udp_and_tcp(server: AuthServer) -> None:
    for transport in ("+notcp", "+tcp"):
        out = await asyncio.to_thread(
            run_tool,
            "kdig",
            f"@{server.host}",
            "-p",
            str(server.port),
            transport,
            "+norecurse",
            "chain.example.test.",
            "A",
        )
        assert "status: NOERROR" in out
        assert "Flags: qr aa;" in out
        flat = " ".join(out.split())
        assert "chain.example.test. 300 IN CNAME alias.example.test." in flat
        assert "www.example.test. 60 IN A 192.0.2.10" in flat
    assert [q.protocol for q in server.queries] == ["udp", "tcp"]


@pytest.mark.usefixtures("needs_kdig")
async def test_kdig_edns_buffer_and_nsid_free_opt(server: AuthServer) -> None:
    out = await asyncio.to_thread(
        run_tool, "kdig", f"@{server.host}", "-p", str(server.port), "+bufsize=4096", "big.example.test.", "TXT"
    )
    assert "EDNS PSEUDOSECTION" in out
    assert "UDP size: 1232" in out
    assert "Flags: qr aa rd;" in out
    assert "ANSWER: 12;" in out


async def test_dnspython_ignores_nothing(server: AuthServer) -> None:
    """Sanity check that the wire is strict: the whole answer re-parses without trailing junk."""
    wire = await raw_udp(server.address, query("www.example.test.", "AAAA").to_wire())
    assert wire is not None
    r = dns.message.from_wire(wire, ignore_trailing=False)
    assert texts(r.answer) == [("www.example.test.", "AAAA", 60, ["2001:db8::10"])]
