"""RedisCache: a second cache level shared by processes, against a real redis-server on loopback.

The lab counts the queries that reach it, so "the second process sent no upstream query" is
a count, not a guess. redis-server comes from Debian (tools/install.sh); under CI its
absence fails these tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from asyncresolve import NoAnswer, NXDomain, Resolver
from asyncresolve.backends import CaresBackend
from asyncresolve.records import SOARecord, from_rdata
from asyncresolve.rediscache import InvalidEntry, RedisCache, decode, encode_answer, encode_negative
from asyncresolve.testing import DNSLab
from asyncresolve.testing.peers import require_peer
from asyncresolve.testing.peers.redis import RedisServer

ZONE = """
@      3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300
www      60 IN A     192.0.2.10
www      60 IN A     192.0.2.11
v6      120 IN AAAA  2001:db8::10
mail    300 IN MX    10 mx1
alias    90 IN CNAME www
txt     100 IN TXT   "one" "two\\000three"
slow     60 IN A     192.0.2.50
"""
ZONES = {"shared.test.": ZONE}

RDATA = [
    ("A", "192.0.2.1"), ("AAAA", "2001:db8::1"), ("CNAME", "x.test."), ("DNAME", "y.test."),
    ("NS", "ns.test."), ("PTR", "p.test."), ("MX", "10 mx.test."), ("SRV", "1 2 5060 sip.test."),
    ("TXT", '"a" "b\\255c"'), ("SOA", "ns.test. host.test. 1 2 3 4 5"), ("CAA", '0 issue "ca.test"'),
    ("NAPTR", '100 10 "U" "E2U+sip" "!^.*$!sip:x@test!" .'), ("TLSA", "3 1 1 " + "ab" * 32),
]


def _record(rdtype: str, text: str, ttl: int = 100):
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)
    return from_rdata("n.test.", ttl, rdata)


@pytest.mark.parametrize(("rdtype", "text"), RDATA)
def test_every_record_type_survives_the_stored_form(rdtype: str, text: str) -> None:
    from asyncresolve import Answer
    record = _record(rdtype, text)
    answer = Answer("n.test.", rdtype, [record], "cares")
    key = ("n.test.", rdtype, "IN")
    back = decode(key, encode_answer(key, answer), 100_000, time.monotonic)
    assert isinstance(back, Answer)
    assert back.records == (record,)
    assert back.from_cache
    assert back.source == "cares"


def test_remaining_ttl_comes_from_redis() -> None:
    from asyncresolve import Answer
    key = ("n.test.", "A", "IN")
    answer = Answer("n.test.", "A", [_record("A", "192.0.2.1", ttl=100)], "cares")
    back = decode(key, encode_answer(key, answer), 40_500, time.monotonic)
    assert isinstance(back, Answer)
    assert back.ttl == 40
    assert back.records[0].ttl == 40


def test_negative_answers_keep_soa_and_kind() -> None:
    soa = _record("SOA", "ns.test. host.test. 1 2 3 4 300", ttl=3600)
    assert isinstance(soa, SOARecord)
    key = ("gone.test.", "A", "IN")
    for error in (NXDomain(name="gone.test.", rdtype="A", source="cares", ttl=300, soa=soa),
                  NoAnswer(name="gone.test.", rdtype="A", source="cares", ttl=300, soa=soa)):
        back = decode(key, encode_negative(key, error, 300), 200_000, time.monotonic)
        assert type(back) is type(error)
        assert back.ttl == 200
        assert back.from_cache
        assert back.soa is not None


@pytest.mark.parametrize("raw", [
    b"\x00\xff garbage", b"[]", b'{"v": 1}', b"not json",
    json.dumps({"v": 2, "k": "n.test.|A|IN", "kind": "answer"}).encode(),
    json.dumps({"v": 1, "k": "other.test.|A|IN", "kind": "answer", "ttl": 5, "source": "x",
                "canonical": None, "chain": [], "records": [["A", "n.test.", 5, "192.0.2.1"]]}).encode(),
    json.dumps({"v": 1, "k": "n.test.|A|IN", "kind": "answer", "ttl": 5, "source": "x",
                "canonical": None, "chain": [], "records": [["A", "n.test.", 5, "2001:db8::1"]]}).encode(),
    json.dumps({"v": 1, "k": "n.test.|A|IN", "kind": "answer", "ttl": 5, "source": "x",
                "canonical": None, "chain": [], "records": [["A", "n.test.", "5", "192.0.2.1"]]}).encode(),
    json.dumps({"v": 1, "k": "n.test.|A|IN", "kind": "answer", "ttl": 5, "source": "x",
                "canonical": None, "chain": [], "records": []}).encode(),
    json.dumps({"v": 1, "k": "n.test.|A|IN", "kind": "evil", "ttl": 5, "source": "x",
                "canonical": None, "chain": []}).encode(),
])
def test_foreign_or_garbled_values_are_refused(raw: bytes) -> None:
    with pytest.raises((InvalidEntry, ValueError)):
        decode(("n.test.", "A", "IN"), raw, 60_000, time.monotonic)


# -- against real servers ---------------------------------------------------------------------

@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    require_peer("redis-server")
    server = RedisServer()
    await server.astart()
    try:
        yield server
    finally:
        await server.astop()


@pytest.fixture
async def lab() -> AsyncIterator[DNSLab]:
    async with DNSLab(ZONES) as lab:
        yield lab


def _resolver(lab: DNSLab, url: str, **options) -> Resolver:
    stub = f"{lab.stub_server[0]}:{lab.stub_server[1]}"
    options.setdefault("op_timeout", 1.0)  # a loaded test machine; the slow-Redis test sets its own
    return Resolver([CaresBackend([stub])], cache=RedisCache(url, **options), timeout=3.0)


def _upstream(lab: DNSLab, name: str, rdtype: str = "A") -> int:
    return len(lab.queries_for(name, rdtype))


async def test_second_resolver_needs_no_upstream_query(lab: DNSLab, redis_server: RedisServer) -> None:
    async with _resolver(lab, redis_server.url) as first, _resolver(lab, redis_server.url) as second:
        a = await first.resolve("www.shared.test", "A")
        await first.cache.flush()  # type: ignore[union-attr]
        assert _upstream(lab, "www.shared.test") == 1
        b = await second.resolve("www.shared.test", "A")
        assert _upstream(lab, "www.shared.test") == 1
        assert sorted(b.addresses) == sorted(a.addresses) == ["192.0.2.10", "192.0.2.11"]
        assert b.from_cache
        assert b.source == "cares"
        assert b.ttl <= 60
        assert second.cache.shared_hits == 1  # type: ignore[union-attr]
        # Now in the second process's own first level: no Redis round trip either.
        c = await second.resolve("www.shared.test", "A")
        assert c.addresses == b.addresses
        assert second.cache.shared_hits == 1


async def test_remaining_ttl_is_shared(lab: DNSLab, redis_server: RedisServer) -> None:
    async with _resolver(lab, redis_server.url) as first, _resolver(lab, redis_server.url) as second:
        await first.resolve("v6.shared.test", "AAAA")
        await first.cache.flush()  # type: ignore[union-attr]
        await asyncio.sleep(2.1)
        answer = await second.resolve("v6.shared.test", "AAAA")
        assert answer.ttl <= 118
        assert _upstream(lab, "v6.shared.test", "AAAA") == 1


async def test_negative_answers_are_shared(lab: DNSLab, redis_server: RedisServer) -> None:
    async with _resolver(lab, redis_server.url) as first, _resolver(lab, redis_server.url) as second:
        with pytest.raises(NXDomain):
            await first.resolve("missing.shared.test", "A")
        with pytest.raises(NoAnswer):
            await first.resolve("www.shared.test", "MX")
        await first.cache.flush()  # type: ignore[union-attr]
        with pytest.raises(NXDomain) as nx:
            await second.resolve("missing.shared.test", "A")
        with pytest.raises(NoAnswer):
            await second.resolve("www.shared.test", "MX")
        assert nx.value.from_cache
        assert 0 < nx.value.ttl <= 300
        assert nx.value.soa is not None
        assert _upstream(lab, "missing.shared.test") == 1
        assert _upstream(lab, "www.shared.test", "MX") == 1


async def test_fleet_coalescing_sends_one_query(lab: DNSLab, redis_server: RedisServer) -> None:
    lab.stub.faults.delay = 0.3
    resolvers = [_resolver(lab, redis_server.url) for _ in range(5)]
    try:
        answers = await asyncio.gather(*(r.resolve("slow.shared.test", "A") for r in resolvers))
        assert all(a.addresses == ["192.0.2.50"] for a in answers)
        assert _upstream(lab, "slow.shared.test") == 1
        assert sum(r.cache.lease_wait_hits for r in resolvers) == 4  # type: ignore[union-attr]
    finally:
        for r in resolvers:
            await r.aclose()


async def test_a_stuck_lease_holder_never_costs_a_deadline(lab: DNSLab, redis_server: RedisServer) -> None:
    import redis.asyncio as aioredis
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        # Another process took the lease and died without answering.
        await client.set("asyncresolve:v1:www.shared.test|A|IN|lease", "someone-else", px=60_000)
        async with _resolver(lab, redis_server.url, lease_time=30.0) as r:
            started = time.monotonic()
            answer = await r.resolve("www.shared.test", "A", timeout=2.0)
            assert time.monotonic() - started < 2.0
            assert sorted(answer.addresses) == ["192.0.2.10", "192.0.2.11"]
            assert r.cache.lease_waits == 1  # type: ignore[union-attr]
    finally:
        await client.aclose()


async def test_garbage_under_our_keys_is_ignored(lab: DNSLab, redis_server: RedisServer) -> None:
    import redis.asyncio as aioredis
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await client.set("asyncresolve:v1:www.shared.test|A|IN", b"\x80garbage", px=60_000)
        await client.set("asyncresolve:v1:mail.shared.test|MX|IN", json.dumps({
            "v": 1, "k": "mail.shared.test|MX|IN", "kind": "answer", "ttl": 300, "source": "evil",
            "canonical": None, "chain": [], "records": [["A", "mail.shared.test.", 300, "6.6.6.6"]]}), px=60_000)
        async with _resolver(lab, redis_server.url) as r:
            answer = await r.resolve("www.shared.test", "A")
            assert sorted(answer.addresses) == ["192.0.2.10", "192.0.2.11"]
            assert not answer.from_cache
            mx = await r.resolve("mail.shared.test", "MX")
            assert mx.source == "cares"
            assert mx.records[0].exchange == "mx1.shared.test."
            assert r.cache.invalid_entries == 2  # type: ignore[union-attr]
            await r.cache.flush()  # type: ignore[union-attr]
        # Our own value replaced the garbage.
        raw = await client.get("asyncresolve:v1:www.shared.test|A|IN")
        assert json.loads(raw)["k"] == "www.shared.test|A|IN"
    finally:
        await client.aclose()


async def test_redis_killed_and_restarted(lab: DNSLab, redis_server: RedisServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="asyncresolve.rediscache")
    async with _resolver(lab, redis_server.url, retry_after=0.3, failure_threshold=2) as r:
        await r.resolve("www.shared.test", "A")
        await redis_server.akill()
        # Redis is gone: every lookup still answers, from upstream, within its deadline.
        for name in ("v6.shared.test", "alias.shared.test", "mail.shared.test"):
            started = time.monotonic()
            answer = await r.resolve(name, {"v6.shared.test": "AAAA", "mail.shared.test": "MX"}.get(name, "A"))
            assert answer.source == "cares"
            assert time.monotonic() - started < 1.0
        cache = r.cache
        assert isinstance(cache, RedisCache)
        assert cache.breaker.trips >= 1
        assert cache.shared_errors >= 2
        assert "unavailable" in caplog.text
        await redis_server.restart()
        # Reconnection: the breaker lets a trial call through every retry_after (a stale
        # pooled connection may cost a trial or two); lookups meanwhile go upstream.
        for _ in range(10):
            await asyncio.sleep(0.35)
            await cache._read(("probe.test.", "A", "IN"), None)
            if cache.breaker.failures == 0:
                break
        assert not cache.breaker.is_open
        cache.delete(("txt.shared.test", "TXT", "IN"))  # only the first level: ask again
        await r.resolve("txt.shared.test", "TXT")
        await cache.flush()
    # A fresh process finds what was written after Redis came back.
    async with _resolver(lab, redis_server.url) as other:
        before = _upstream(lab, "txt.shared.test", "TXT")
        txt = await other.resolve("txt.shared.test", "TXT")
        assert txt.from_cache
        assert _upstream(lab, "txt.shared.test", "TXT") == before
        assert txt.records[0].strings == (b"one", b"two\x00three")  # type: ignore[attr-defined]


async def test_slow_redis_does_not_slow_lookups(lab: DNSLab, redis_server: RedisServer) -> None:
    import redis.asyncio as aioredis
    blocker = aioredis.Redis.from_url(redis_server.url)
    try:
        async with _resolver(lab, redis_server.url, op_timeout=0.05) as r:
            await r.resolve("www.shared.test", "A")  # connection pool warm
            sleeper = asyncio.ensure_future(blocker.execute_command("DEBUG", "SLEEP", "1.5"))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            answers = await asyncio.gather(*(r.resolve(n, "A") for n in (
                "slow.shared.test", "alias.shared.test")))
            elapsed = time.monotonic() - started
            assert [sorted(a.addresses) for a in answers] == [["192.0.2.50"], ["192.0.2.10", "192.0.2.11"]]
            assert elapsed < 0.8, elapsed
            await sleeper
    finally:
        await blocker.aclose()


async def test_flushed_redis_just_misses(lab: DNSLab, redis_server: RedisServer) -> None:
    import redis.asyncio as aioredis
    async with _resolver(lab, redis_server.url) as first:
        await first.resolve("www.shared.test", "A")
        await first.cache.flush()  # type: ignore[union-attr]
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    async with _resolver(lab, redis_server.url) as second:
        answer = await second.resolve("www.shared.test", "A")
        assert not answer.from_cache
        assert _upstream(lab, "www.shared.test") == 2


SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from asyncresolve import Resolver
    from asyncresolve.backends import CaresBackend
    from asyncresolve.rediscache import RedisCache

    async def main():
        async with Resolver([CaresBackend([sys.argv[1]])], cache=RedisCache(sys.argv[2], op_timeout=2.0)) as r:
            answer = await r.resolve(sys.argv[3], "A")
            print(json.dumps({"addresses": sorted(answer.addresses), "from_cache": answer.from_cache,
                              "ttl": answer.ttl}))

    asyncio.run(main())
""")


def test_separate_processes_share_one_redis() -> None:
    require_peer("redis-server")
    with DNSLab(ZONES) as lab, RedisServer() as redis_server:
        stub = f"{lab.stub_server[0]}:{lab.stub_server[1]}"
        outputs = []
        for _ in range(3):
            done = subprocess.run([sys.executable, "-c", SCRIPT, stub, redis_server.url, "www.shared.test"],
                                  capture_output=True, text=True, timeout=60, check=True)
            outputs.append(json.loads(done.stdout))
        assert [o["from_cache"] for o in outputs] == [False, True, True]
        assert all(o["addresses"] == ["192.0.2.10", "192.0.2.11"] for o in outputs)
        assert len(lab.queries_for("www.shared.test", "A")) == 1
