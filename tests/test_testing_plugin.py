"""The pytest plugin ``asyncresolve.testing.pytest_plugin``, run in an inner pytest session."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "asyncresolve.testing.pytest_plugin"


def plugin_args() -> list[str]:
    """``-p PLUGIN`` unless the installed package already registers it through its pytest11 entry point."""
    registered = any(ep.value == PLUGIN for ep in entry_points(group="pytest11"))
    return [] if registered else ["-p", PLUGIN]


INNER_TESTS = '''
import dns.asyncquery, dns.message, dns.query, dns.rcode
import pytest

ZONE = """
@   300 IN SOA ns1 hostmaster 1 7200 900 1209600 300
@   300 IN NS  ns1
ns1 300 IN A   192.0.2.1
www  60 IN A   192.0.2.10
"""
LABS = []

@pytest.mark.asyncio
async def test_dns_lab(dns_lab):
    lab = await dns_lab({"example.test.": ZONE}, servers_per_zone=2)
    LABS.append(lab)
    assert len(lab.servers_for("example.test.")) == 2
    ip, port = lab.stub_server
    r = await dns.asyncquery.udp(dns.message.make_query("www.example.test.", "A"), ip, port=port, timeout=2)
    assert r.answer[0][0].address == "192.0.2.10"

def test_lab_stopped_after_test():
    assert LABS and not LABS[0].running

@pytest.mark.asyncio
async def test_dns_server(dns_server):
    server = await dns_server({"example.test.": ZONE})
    server.faults.refuse = True
    r = await dns.asyncquery.udp(dns.message.make_query("www.example.test.", "A"), server.host, port=server.port,
                                 timeout=2)
    assert r.rcode() == dns.rcode.REFUSED
    assert server.query_count == 1

def test_dns_lab_in_thread(dns_lab_in_thread):
    lab = dns_lab_in_thread({"example.test.": ZONE})
    host, port = lab.server_for("example.test.").address
    r = dns.query.udp(dns.message.make_query("www.example.test.", "A"), host, port=port, timeout=2)
    assert r.answer[0][0].address == "192.0.2.10"
    LABS.append(lab)

def test_thread_lab_stopped():
    assert not LABS[-1].running

def test_options_default(dns_lab_options):
    assert dns_lab_options == EXPECTED_OPTIONS
'''


def test_fixtures_in_strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER_TESTS.replace("EXPECTED_OPTIONS", "{}"))
    result = pytester.runpytest(
        *plugin_args(),
        "-o",
        "asyncio_mode=strict",
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=6)


def test_port_option_and_overridable_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER_TESTS.replace("EXPECTED_OPTIONS", "{'port': 5353, 'seed': 3}"))
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def dns_lab_options(dns_lab_options):
    return {**dns_lab_options, "seed": 3}
"""
    )
    result = pytester.runpytest(
        *plugin_args(),
        "--dns-lab-port",
        "5353",
        "-k",
        "options",
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=1)


async def test_dns_server_completes_a_zone_without_soa_like_the_lab(dns_server: Any) -> None:
    """A zone without SOA or NS is served like DNSLab serves it (they are added), not rejected
    with dnspython's NoSOA."""
    import dns.asyncquery
    import dns.message
    import dns.rcode

    server = await dns_server({"example.test.": "www 60 IN A 192.0.2.10"})
    ip, port = server.address

    async def ask(name: str, rdtype: str) -> dns.message.Message:
        return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), ip, port=port, timeout=5)

    assert (await ask("www.example.test.", "A")).answer[0][0].address == "192.0.2.10"
    nx = await ask("nope.example.test.", "A")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    soa = nx.authority[0][0]
    assert soa.mname.to_text() == "ns1.example.test."
    assert soa.rname.to_text() == "hostmaster.example.test."
    ns = await ask("example.test.", "NS")
    assert [r.target.to_text() for r in ns.answer[0]] == ["ns1.example.test."]
    glue = await ask("ns1.example.test.", "A")
    assert glue.answer[0][0].address == ip
    # a zone that has its own SOA and NS keeps them
    own = await dns_server({"other.test.": "@ 300 IN SOA a.other.test. b.other.test. 7 1 1 1 1\n"
                                           "@ 300 IN NS a.other.test.\na 300 IN A 192.0.2.1"})
    reply = await dns.asyncquery.udp(dns.message.make_query("other.test.", "SOA"), own.host, port=own.port, timeout=5)
    assert reply.answer[0][0].serial == 7
    assert reply.answer[0][0].mname.to_text() == "a.other.test."
