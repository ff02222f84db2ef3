"""DNSLab: the synthesised hierarchy, walked by hand with dnspython, plus threads, port 53 and the CLI."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from asyncresolve.testing import DNSLab
from asyncresolve.testing.peers import require_root

ZONES = {
    "example.test.": """
        @    3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300
        @    3600 IN NS  ns1
        ns1  3600 IN A   127.0.0.1          ; data, not where the server binds
        www  60   IN A   192.0.2.10
        mail 300  IN MX  10 mx1
        mx1  300  IN A   192.0.2.25
        ext  300  IN CNAME www.other.example.
    """,
    "other.example.": "www 120 IN A 192.0.2.200",
    "sub.example.test.": "host 30 IN A 192.0.2.77",
}


async def ask(address: tuple[str, int], name: str, rdtype: str = "A") -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), address[0], port=address[1], timeout=2)


def glue(response: dns.message.Message) -> dict[str, str]:
    return {r.name.to_text(): r[0].address for r in response.additional if r.rdtype == dns.rdatatype.A}


def ns_names(response: dns.message.Message) -> list[str]:
    return sorted(rd.target.to_text() for r in response.authority if r.rdtype == dns.rdatatype.NS for rd in r)


async def test_walk_the_hierarchy_by_hand_following_glue() -> None:
    async with DNSLab(ZONES) as lab:
        port = lab.port
        assert len(lab.root_hints) == 1
        assert lab.root_hints[0][1] == port
        server = lab.root_hints[0]
        seen = []
        for _ in range(5):
            r = await ask(server, "host.sub.example.test.")
            if r.answer:
                break
            assert not r.flags & dns.flags.AA
            assert r.rcode() == dns.rcode.NOERROR
            cut = r.authority[0].name.to_text()
            seen.append(cut)
            addresses = glue(r)
            assert sorted(addresses) == ns_names(r)  # every NS name has its glue
            assert addresses[ns_names(r)[0]] == lab.server_for(cut).host
            server = (addresses[ns_names(r)[0]], port)
        assert seen == ["test.", "example.test.", "sub.example.test."]
        assert r.flags & dns.flags.AA
        assert [(a.name.to_text(), a.ttl, a[0].address) for a in r.answer] == [
            ("host.sub.example.test.", 30, "192.0.2.77")
        ]
        assert [q.server for q in lab.queries] == [
            "a.root-servers.lab.",
            "ns1.nic.test.",
            "ns1.example.test.",
            "ns1.sub.example.test.",
        ]


async def test_root_priming_and_user_ns_records_rewritten_to_lab_addresses() -> None:
    async with DNSLab(ZONES) as lab:
        root = lab.root_hints[0]
        r = await ask(root, ".", "NS")
        assert r.flags & dns.flags.AA
        assert [rd.target.to_text() for rd in r.answer[0]] == ["a.root-servers.lab."]
        assert glue(r) == {"a.root-servers.lab.": root[0]}
        # the user's "ns1 A 127.0.0.1" now names where the zone is really served
        example = lab.server_for("example.test.")
        assert example.name == "ns1.example.test."
        r = await ask(example.address, "ns1.example.test.")
        assert r.answer[0][0].address == example.host != "127.0.0.1"
        r = await ask(example.address, "example.test.", "NS")
        assert [rd.target.to_text() for rd in r.answer[0]] == ["ns1.example.test."]
        # the parent delegates sub.example.test. inside the user's own zone, with glue
        r = await ask(example.address, "x.sub.example.test.")
        assert glue(r) == {"ns1.sub.example.test.": lab.server_for("sub.example.test.").host}


async def test_addresses_are_in_a_private_loopback_block_and_differ_between_labs() -> None:
    async with DNSLab(ZONES) as a, DNSLab(ZONES) as b:
        hosts_a = {s.host for s in a.servers} | {a.stub_server[0]}
        hosts_b = {s.host for s in b.servers}
        assert len(hosts_a) == len(a.servers) + 1  # one address each
        for host in hosts_a | hosts_b:
            octets = host.split(".")
            assert octets[0] == "127"
            assert int(octets[1]) >= 64
        assert {h.rsplit(".", 1)[0] for h in hosts_a} != {h.rsplit(".", 1)[0] for h in hosts_b}
        assert a.port != 53
        assert a.port > 1024


async def test_zones_text_is_complete_and_reloadable() -> None:
    async with DNSLab(ZONES) as lab:
        zones = lab.zones
        assert sorted(zones) == [
            ".",
            "example.",
            "example.test.",
            "lab.",
            "other.example.",
            "sub.example.test.",
            "test.",
        ]
        for origin, text in zones.items():
            zone = dns.zone.from_text(text, origin=origin, relativize=False)  # checks SOA and NS at the apex
            ns = zone.get_rdataset(origin, "NS")
            assert {rd.target.to_text() for rd in ns} == {s.name for s in lab.servers_for(origin)}
        test_zone = dns.zone.from_text(zones["test."], origin="test.", relativize=False)
        assert test_zone.get_rdataset("example.test.", "NS") is not None
        assert test_zone.get_rdataset("ns1.example.test.", "A")[0].address == lab.server_for("example.test.").host
        # the user's zone got the delegation of its child, glue included
        example = dns.zone.from_text(zones["example.test."], origin="example.test.", relativize=False)
        assert example.get_rdataset("sub.example.test.", "NS") is not None
        assert example.get_rdataset("ns1.sub.example.test.", "A") is not None


async def test_stub_server_answers_every_zone_and_follows_cnames_across_zones() -> None:
    async with DNSLab(ZONES) as lab:
        r = await ask(lab.stub_server, "ext.example.test.")
        assert r.flags & dns.flags.AA
        assert r.flags & dns.flags.RA
        assert [(a.name.to_text(), a.rdtype) for a in r.answer] == [
            ("ext.example.test.", dns.rdatatype.CNAME),
            ("www.other.example.", dns.rdatatype.A),
        ]
        r = await ask(lab.stub_server, "host.sub.example.test.")
        assert r.answer[0][0].address == "192.0.2.77"
        r = await ask(lab.stub_server, "a.root-servers.lab.")
        assert r.answer[0][0].address == lab.root_hints[0][0]
        r = await ask(lab.stub_server, "no-such-tld.")
        assert r.rcode() == dns.rcode.NXDOMAIN
        assert r.authority[0].name == dns.name.root


async def test_servers_per_zone_gives_independent_servers() -> None:
    async with DNSLab(ZONES, servers_per_zone={"example.test.": 3, ".": 2}) as lab:
        assert len(lab.root_hints) == 2
        servers = lab.servers_for("example.test.")
        assert [s.name for s in servers] == ["ns1.example.test.", "ns2.example.test.", "ns3.example.test."]
        r = await ask(lab.server_for("test.").address, "www.example.test.")
        assert glue(r) == {s.name: s.host for s in servers}
        for s in servers:
            assert (await ask(s.address, "www.example.test.")).answer
            assert s.query_count == 1
        assert len(lab.servers_for("sub.example.test.")) == 1


async def test_glueless_delegation() -> None:
    async with DNSLab(ZONES, glueless={"example.test."}) as lab:
        r = await ask(lab.server_for("test.").address, "www.example.test.")
        assert ns_names(r) == ["ns1.example-test.hosts.lab."]
        assert r.additional == []  # no glue: the resolver must resolve the NS name first
        # resolving it: root -> lab. -> address
        r = await ask(lab.root_hints[0], "ns1.example-test.hosts.lab.")
        assert ns_names(r) == ["ns1.nic.lab."]
        r = await ask((glue(r)["ns1.nic.lab."], lab.port), "ns1.example-test.hosts.lab.")
        address = r.answer[0][0].address
        assert address == lab.server_for("example.test.").host
        assert (await ask((address, lab.port), "www.example.test.")).answer[0][0].address == "192.0.2.10"


async def test_lame_and_unreachable_name_servers() -> None:
    async with DNSLab(ZONES, lame={"example.test.": 1}, unreachable=["example.test."]) as lab:
        r = await ask(lab.server_for("test.").address, "www.example.test.")
        assert ns_names(r) == ["lame1.example.test.", "ns1.example.test.", "unreachable1.example.test."]
        addresses = glue(r)
        (lame,) = lab.lame_servers_for("example.test.")
        assert addresses["lame1.example.test."] == lame.host
        r = await ask(lame.address, "www.example.test.")
        assert r.rcode() == dns.rcode.REFUSED
        lame.faults.lame = True
        r = await ask(lame.address, "www.example.test.")
        assert r.rcode() == dns.rcode.NOERROR
        assert not r.flags & dns.flags.AA
        assert r.authority[0].name == dns.name.root
        dead = addresses["unreachable1.example.test."]
        assert [ns.role for ns in lab.nameservers_for("example.test.")] == ["auth", "lame", "unreachable"]
        with pytest.raises((dns.exception.Timeout, ConnectionRefusedError)):
            await dns.asyncquery.tcp(dns.message.make_query("www.example.test.", "A"), dead, port=lab.port, timeout=0.3)


async def test_queries_log_and_reset() -> None:
    async with DNSLab(ZONES, stub=True) as lab:
        await ask(lab.stub_server, "www.example.test.")
        await ask(lab.stub_server, "www.example.test.")
        await ask(lab.server_for("example.test.").address, "www.example.test.", "MX")
        assert len(lab.queries_for("WWW.example.test")) == 3
        assert len(lab.queries_for("www.example.test.", "MX")) == 1
        assert lab.stub is not None
        assert lab.stub.query_count == 2
        assert lab.query_count == 3
        lab.reset_counters()
        assert lab.queries == []
        assert lab.query_count == 0


async def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="collides with the lab's infra_domain"):
        DNSLab({"lab.": "x A 192.0.2.1"})
    with pytest.raises(ValueError, match="the root zone cannot be glueless"):
        DNSLab(ZONES, glueless=["."])
    lab = DNSLab(ZONES)
    with pytest.raises(RuntimeError):
        lab.root_hints  # noqa: B018 - not started
    with pytest.raises(KeyError):
        async with DNSLab(ZONES) as running:
            running.server_for("nope.test.")


async def test_port_53_as_root() -> None:
    require_root()
    async with DNSLab(ZONES, port=53) as lab:
        assert lab.port == 53
        assert all(port == 53 for _, port in lab.root_hints)
        assert all(s.port == 53 for s in lab.servers)
        r = await ask(lab.server_for("example.test.").address, "www.example.test.")
        assert r.answer[0][0].address == "192.0.2.10"
    # sockets released: the same lab can start again on 53 straight away
    async with DNSLab(ZONES, port=53) as lab:
        assert (await ask(lab.stub_server, "www.example.test.")).answer


def test_sync_lab_in_a_thread_with_dig() -> None:
    with DNSLab(ZONES) as lab:
        ip, port = lab.stub_server
        if shutil.which("dig"):
            out = subprocess.run(
                ["dig", f"@{ip}", "-p", str(port), "+short", "+time=2", "+tries=1", "www.example.test.", "A"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            assert out.split() == ["192.0.2.10"]
        r = dns.query.udp(dns.message.make_query("mx1.example.test.", "A"), ip, port=port, timeout=2)
        assert r.answer[0][0].address == "192.0.2.25"
        lab.server_for("example.test.").faults.servfail = True  # faults work from this thread too
        host, port = lab.server_for("example.test.").address
        r = dns.query.udp(dns.message.make_query("www.example.test.", "A"), host, port=port, timeout=2)
        assert r.rcode() == dns.rcode.SERVFAIL
    assert not lab.running
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind((ip, port))  # released


def test_cli_serve(tmp_path: Path) -> None:
    zone_file = tmp_path / "example.test.zone"
    zone_file.write_text("www 60 IN A 192.0.2.10\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncresolve.testing", "serve", str(zone_file)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        r = dns.query.udp(
            dns.message.make_query("www.example.test.", "A"), info["stub_server"], port=info["port"], timeout=2
        )
        assert r.answer[0][0].address == "192.0.2.10"
        assert info["servers"]["ns1.example.test."].startswith("127.")
        assert len(info["root_hints"]) == 1
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
