"""The iterative backend against the lab hierarchy: record types, aliases, faults, poisoning, caching.

Every resolver here gets the lab's root hints: nothing is ever sent outside 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncresolve.answer import Answer
from asyncresolve.backends.base import Query
from asyncresolve.backends.iterative import IterativeBackend, TraceStep, iana_root_hints
from asyncresolve.cache import TTLCache
from asyncresolve.errors import InvalidQuery, NoAnswer, NXDomain, ResolveTimeout, ServFail
from asyncresolve.testing import DNSLab

EXAMPLE = """
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
sshfp     300 IN SSHFP 1 1 123456789abcdef67890123456789abcdef67890
alias     200 IN CNAME alias2
alias2    100 IN CNAME www
cross     300 IN CNAME www.other.test.
dangling  300 IN CNAME gone.other.test.
*.wild    300 IN A     192.0.2.99
deep.sub  300 IN TXT   "deep"
dn        300 IN DNAME other.test.
"""
OTHER = """
www       60 IN A     192.0.2.9
host      60 IN A     192.0.2.10
"""
GLUELESS = "www 120 IN A 192.0.2.77\n"
VICTIM = "www 300 IN A 192.0.2.66\n"
ZONES = {"example.test.": EXAMPLE, "other.test.": OTHER, "glueless.test.": GLUELESS, "victim.test.": VICTIM}


@pytest.fixture
async def lab() -> AsyncIterator[Any]:
    async with DNSLab(ZONES, glueless=["glueless.test."], servers_per_zone={"example.test.": 2},
                      lame={"other.test.": 1}, seed=7) as running:
        yield running


def backend(lab: Any, **kw: Any) -> IterativeBackend:
    kw.setdefault("initial_timeout", 0.3)
    return IterativeBackend(root_hints=lab.root_hints, port=lab.port, **kw)


async def resolve(b: IterativeBackend, name: str, rdtype: str = "A", timeout: float = 5.0) -> Answer:
    loop = asyncio.get_running_loop()
    return await b.resolve(Query(name, rdtype, loop.time() + timeout))


def texts(answer: Answer) -> list[str]:
    return sorted(r.text for r in answer.records)


RECORD_CASES = [
    ("www.example.test.", "A", ["192.0.2.1", "192.0.2.2"], 300),
    ("www.example.test.", "AAAA", ["2001:db8::1"], 300),
    ("example.test.", "MX", ["10 mail.example.test."], 3600),
    ("example.test.", "TXT", ['"v=spf1 -all"'], 3600),
    ("txt.example.test.", "TXT", ['"hello world" "second string"'], 300),
    ("_sip._tcp.example.test.", "SRV", ["10 60 5060 sip.example.test."], 300),
    ("example.test.", "CAA", ['0 issue "ca.example.net"'], 300),
    ("naptr.example.test.", "NAPTR", ['100 10 "u" "E2U+sip" "!^.*$!sip:info@example.test!" .'], 300),
    ("ptr.example.test.", "PTR", ["www.example.test."], 300),
    ("hinfo.example.test.", "HINFO", ['"PC" "Linux"'], 300),
    ("sshfp.example.test.", "SSHFP", ["1 1 123456789abcdef67890123456789abcdef67890"], 300),
    ("deep.sub.example.test.", "TXT", ['"deep"'], 300),
    ("a.b.wild.example.test.", "A", ["192.0.2.99"], 300),
    ("x.wild.example.test.", "A", ["192.0.2.99"], 300),
]


@pytest.mark.parametrize(("name", "rdtype", "expected", "ttl"), RECORD_CASES)
async def test_every_record_type(lab: Any, name: str, rdtype: str, expected: list[str], ttl: int) -> None:
    answer = await resolve(backend(lab), name, rdtype)
    assert texts(answer) == expected
    assert all(r.name == name and r.ttl == ttl for r in answer.records)
    assert answer.source == "iterative"
    assert answer.cname_chain == ()


async def test_soa_and_ns_of_a_zone(lab: Any) -> None:
    b = backend(lab)
    soa = await resolve(b, "example.test.", "SOA")
    assert soa.records[0].rdtype == "SOA"
    assert soa.records[0].name == "example.test."
    ns = await resolve(b, "example.test.", "NS")
    expected = sorted(n.hostname.to_text() for n in lab.nameservers_for("example.test."))
    assert texts(ns) == expected


async def test_cname_chain_within_a_zone(lab: Any) -> None:
    answer = await resolve(backend(lab), "alias.example.test.")
    assert [(c.name, c.target) for c in answer.cname_chain] == [
        ("alias.example.test.", "alias2.example.test."), ("alias2.example.test.", "www.example.test.")]
    assert answer.canonical_name == "www.example.test."
    assert texts(answer) == ["192.0.2.1", "192.0.2.2"]
    assert answer.ttl == 100


async def test_cname_across_zones(lab: Any) -> None:
    answer = await resolve(backend(lab), "cross.example.test.")
    assert [(c.name, c.target) for c in answer.cname_chain] == [("cross.example.test.", "www.other.test.")]
    assert texts(answer) == ["192.0.2.9"]
    assert answer.ttl == 60


async def test_dname(lab: Any) -> None:
    answer = await resolve(backend(lab), "host.dn.example.test.")
    assert answer.cname_chain[0].target == "host.other.test."
    assert texts(answer) == ["192.0.2.10"]


async def test_cname_to_a_name_that_does_not_exist(lab: Any) -> None:
    with pytest.raises(NXDomain) as info:
        await resolve(backend(lab), "dangling.example.test.")
    assert info.value.name == "dangling.example.test."
    assert info.value.soa is not None
    assert info.value.soa.name == "other.test."
    assert info.value.ttl == 300
    assert [(r.name, r.target) for r in info.value.cname_chain] == [("dangling.example.test.", "gone.other.test.")]
    assert info.value.canonical_name == "gone.other.test."


async def test_nxdomain_and_nodata_carry_the_soa(lab: Any) -> None:
    b = backend(lab)
    with pytest.raises(NXDomain) as nx:
        await resolve(b, "nope.example.test.")
    assert nx.value.soa is not None
    assert nx.value.soa.name == "example.test."
    assert nx.value.ttl == 300
    with pytest.raises(NoAnswer) as nodata:
        await resolve(b, "mail.example.test.", "AAAA")
    assert nodata.value.soa is not None
    assert nodata.value.ttl == 300
    with pytest.raises(NXDomain):
        await resolve(b, "nope.nosuchtld.")


async def test_glueless_delegation(lab: Any) -> None:
    b = backend(lab)
    answer = await resolve(b, "www.glueless.test.")
    assert texts(answer) == ["192.0.2.77"]
    assert b.stats.sub_resolutions >= 1
    ns_name = lab.nameservers_for("glueless.test.")[0].hostname.to_text()
    assert b.infra.addresses(ns_name, "A") == (lab.server_for("glueless.test.").host,)


async def test_lame_server_next_to_a_good_one(lab: Any) -> None:
    b = backend(lab)
    lame = lab.lame_servers_for("other.test.")[0]
    good = lab.server_for("other.test.")
    for upward in (False, True):
        lame.faults.lame = upward  # REFUSED, then an upward referral to the root
        b.infra.cache.delete(("iterative", "lame", "other.test.", lame.host, lab.port))  # type: ignore[attr-defined]
        b.infra.servers.record_rtt(lame.address, 0.0001)  # make it the first choice
        b.infra.servers.record_rtt(good.address, 0.05)
        answer = await resolve(b, "www.other.test.")
        assert texts(answer) == ["192.0.2.9"]
        assert b.infra.is_lame("other.test.", lame.address)
    before = lame.query_count
    await resolve(b, "host.other.test.")
    assert lame.query_count == before  # remembered as lame for the zone


async def test_server_that_drops_everything(lab: Any) -> None:
    b = backend(lab)
    dropper, good = lab.servers_for("example.test.")
    dropper.faults.drop_rate = 1.0
    b.infra.servers.record_rtt(dropper.address, 0.0001)  # the dropper looks best: asked first
    b.infra.servers.record_rtt(good.address, 0.01)
    answer = await resolve(b, "www.example.test.")
    assert texts(answer) == ["192.0.2.1", "192.0.2.2"]
    assert dropper.query_count >= 1
    assert good.query_count >= 1
    assert b.infra.servers.srtt(dropper.address) > b.infra.servers.srtt(good.address)  # pushed down
    good.faults.drop_rate = 1.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises((ResolveTimeout, ServFail)):
        await resolve(b, "mail.example.test.", timeout=2.0)
    assert loop.time() - started < 2.5


async def test_truncating_server_is_retried_over_tcp(lab: Any) -> None:
    b = backend(lab)
    for server in lab.servers_for("example.test."):
        server.faults.truncate = True
    answer = await resolve(b, "www.example.test.")
    assert texts(answer) == ["192.0.2.1", "192.0.2.2"]
    assert b.transport.stats.truncated >= 1
    assert b.transport.stats.tcp_queries >= 1
    assert any(q.protocol == "tcp" and q.name == "www.example.test." for q in lab.queries)


@pytest.mark.parametrize("section", ["additional", "answer", "authority"])
async def test_out_of_bailiwick_poison_is_never_used_or_cached(lab: Any, section: str) -> None:
    cache = TTLCache()
    b = backend(lab, cache=cache)
    for server in lab.servers_for("example.test."):
        server.faults.poison_with(
            "www.victim.test. 300 IN A 198.51.100.66",
            "victim.test. 300 IN NS ns.evil.example.test.",
            "ns1.nic.test. 300 IN A 127.66.6.6",
            section=section,
        )
    answer = await resolve(b, "www.example.test.")
    assert texts(answer) == ["192.0.2.1", "192.0.2.2"]
    stored = {key: cache.get(key) for key in list(cache._entries)}
    assert ("iterative", "zone-ns", "test.") in stored  # the walk did cache infrastructure
    assert [k for k, v in stored.items() if "victim" in str(k) or "127.66.6.6" in str(v) or "evil" in str(v)] == []
    lab.reset_counters()
    victim = await resolve(b, "www.victim.test.")
    assert texts(victim) == ["192.0.2.66"]
    assert any(q.server == lab.nameservers_for("victim.test.")[0].hostname.to_text() for q in lab.queries)


@pytest.mark.parametrize("fault", ["wrong_id", "other_source", "wrong_question", "malformed"])
async def test_mismatched_responses_are_ignored(lab: Any, fault: str) -> None:
    b = backend(lab)
    bad, good = lab.servers_for("example.test.")
    setattr(bad.faults, fault, True)
    bad.faults.poison_with("www.example.test. 300 IN A 198.51.100.66", section="answer")
    b.infra.servers.record_rtt(bad.address, 0.0001)  # ask the bad one first
    b.infra.servers.record_rtt(good.address, 0.05)
    answer = await resolve(b, "www.example.test.")
    assert texts(answer) == ["192.0.2.1", "192.0.2.2"]
    assert bad.query_count >= 1
    stats = b.transport.stats
    if fault == "malformed":
        assert stats.malformed >= 1
    else:
        assert stats.ignored >= 1


async def test_0x20_case_randomisation(lab: Any) -> None:
    b = backend(lab, use_0x20=True)
    answer = await resolve(b, "www.example.test.")
    assert texts(answer) == ["192.0.2.1", "192.0.2.2"]
    assert answer.records[0].name == "www.example.test."


async def test_through_the_resolver_with_its_shared_cache(lab: Any) -> None:
    from asyncresolve.resolver import Resolver

    b = backend(lab)
    resolver = Resolver(backends=[b])
    try:
        answer = await resolver.resolve("www.example.test", "A")
        assert texts(answer) == ["192.0.2.1", "192.0.2.2"]
        assert resolver.cache is not None
        assert resolver.cache.get(("iterative", "zone-ns", "example.test.")) is not None
        assert b.infra.cache is resolver.cache
    finally:
        await resolver.aclose()


async def test_trace_shows_the_referral_path(lab: Any) -> None:
    seen: list[TraceStep] = []
    b = backend(lab, trace=seen.append)
    result = await b.resolve_with_trace("www.example.test", "A")
    assert result.answer is not None
    assert result.error is None
    assert [s.zone for s in result.steps] == [".", "test.", "example.test."]
    assert result.steps[0].server == lab.root_hints[0]
    assert result.steps[0].outcome.startswith("referral to test.")
    assert result.steps[-1].outcome == "answer: 2 A"
    assert all(s.elapsed is not None and s.elapsed >= 0 for s in result.steps)
    assert seen == result.steps
    assert result.queries == 3
    failed = await b.resolve_with_trace("nope.example.test", "A")
    assert isinstance(failed.error, NXDomain)
    assert failed.steps[-1].outcome.startswith("NXDOMAIN")


async def test_infrastructure_cache_one_root_and_one_tld_query_for_1000_names() -> None:
    zone = "\n".join(f"h{i} 300 IN A 192.0.{i // 250}.{i % 250}" for i in range(1000))
    async with DNSLab({"bulk.test.": zone}) as lab:
        cache = TTLCache()
        # counts exact queries: a slow reply from the loaded lab must not look like a loss
        b = IterativeBackend(root_hints=lab.root_hints, port=lab.port, cache=cache, initial_timeout=3.0)
        b.infra.servers.min_timeout = 3.0
        names = [f"h{i}.bulk.test." for i in range(1000)]
        # 100 at a time: a burst of 1000 at one Python server on a starved CPU times out whole
        # resolutions, and the point here is the cache, not the burst
        bounded = asyncio.Semaphore(100)

        async def one(name: str) -> Answer:
            async with bounded:
                return await resolve(b, name, timeout=20)

        answers = await asyncio.gather(*(one(n) for n in names))
        assert [a.records[0].text for a in answers[:3]] == ["192.0.0.0", "192.0.0.1", "192.0.0.2"]
        per_server: dict[str, int] = {}
        for q in lab.queries:
            per_server[q.server] = per_server.get(q.server, 0) + 1
        root = lab.nameservers_for(".")[0].hostname.to_text()
        tld = lab.nameservers_for("test.")[0].hostname.to_text()
        bulk = lab.nameservers_for("bulk.test.")[0].hostname.to_text()
        # The root and the TLD are asked once; under CPU load an exchange may time out and be
        # asked again, but only as many times as the transport saw a timeout, and never once
        # per name (1000): the delegations come from the cache.
        retries = b.transport.stats.timeouts
        assert 1 <= per_server[root] <= 1 + retries
        assert 1 <= per_server[tld] <= 1 + retries
        assert {q.name for q in lab.queries if q.server == bulk} == set(names)
        assert 1000 <= per_server[bulk] <= 1000 + retries
        assert set(per_server) == {root, tld, bulk}
        assert b.stats.upstream_queries <= 1002 + retries


async def test_infrastructure_cache_without_minimisation() -> None:
    zone = "\n".join(f"h{i} 300 IN A 192.0.2.{i % 250}" for i in range(200))
    async with DNSLab({"bulk.test.": zone}) as lab:
        b = IterativeBackend(root_hints=lab.root_hints, port=lab.port, qname_minimisation=False,
                             initial_timeout=3.0)
        b.infra.servers.min_timeout = 3.0  # counts exact queries: slow is not lost
        bulk = lab.nameservers_for("bulk.test.")[0].hostname.to_text()
        await resolve(b, "h0.bulk.test.")
        # the whole name to the root, test. and bulk.test. (under CPU load a query may time out
        # and be sent again: as many times as the transport counted a timeout)
        first = list(lab.queries)
        assert {q.name for q in first} == {"h0.bulk.test."}
        assert first[-1].server == bulk
        assert 3 <= len(first) <= 3 + b.transport.stats.timeouts
        await asyncio.gather(*(resolve(b, f"h{i}.bulk.test.") for i in range(1, 200)))
        # the other 199 names go straight to bulk.test.'s server
        later = lab.queries[len(first):]
        assert {q.server for q in later} == {bulk}
        assert {q.name for q in later} == {f"h{i}.bulk.test." for i in range(1, 200)}
        assert 199 <= len(later) <= 199 + b.transport.stats.timeouts


def test_bundled_root_hints_are_refused_when_public_roots_are_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCRESOLVE_NO_PUBLIC_ROOTS", "1")  # tests/conftest.py sets it for the whole suite
    with pytest.raises(InvalidQuery, match="root_hints"):
        IterativeBackend()


def test_the_library_does_not_sniff_the_test_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under pytest (PYTEST_CURRENT_TEST is set) the backend builds as it does in production;
    nothing is sent by building it."""
    monkeypatch.delenv("ASYNCRESOLVE_NO_PUBLIC_ROOTS", raising=False)
    assert "PYTEST_CURRENT_TEST" in os.environ
    backend = IterativeBackend()
    assert backend.root_hints == iana_root_hints()
    assert not backend.infra.loopback_only


async def test_never_sends_outside_loopback_with_a_lab_root(lab: Any) -> None:
    b = backend(lab)
    assert b.infra.loopback_only
    from asyncresolve.backends.iterative.transport import TransportUnreachable

    with pytest.raises(TransportUnreachable):
        await b.transport.query(("192.0.2.1", 53), "www.example.test.", "A", 0.1)
    assert b.transport.stats.udp_queries == 0
