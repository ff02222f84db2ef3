import asyncio
import socket

import pytest

from asyncresolve import (
    AAAARecord,
    Answer,
    ARecord,
    InvalidName,
    InvalidQuery,
    NetworkError,
    NoAnswer,
    NXDomain,
    Resolver,
    ResolverClosed,
    ResolveTimeout,
    ServFail,
    TTLCache,
)
from asyncresolve.addrselect import sort_destinations


def dual(query):
    if query.rdtype == "A":
        return Answer(query.name, "A", [ARecord(query.name, 60, "192.0.2.1")], "scripted")
    return Answer(query.name, "AAAA", [AAAARecord(query.name, 30, "2001:db8::1")], "scripted")


async def test_resolve_returns_answer_with_source_and_real_ttl(scripted, clock):
    backend = scripted(table={("www.example.test.", "A"): "192.0.2.1"}, ttl=120)
    async with Resolver([backend], cache=TTLCache(clock=clock)) as r:
        answer = await r.resolve("WWW.Example.Test.", "a")
        assert (answer.name, answer.rdtype, answer.ttl, answer.source) == ("www.example.test.", "A", 120, "scripted")
        assert not answer.from_cache
        assert answer.canonical_name == "www.example.test."
        assert answer.records[0].text == "192.0.2.1"
        clock.advance(100)
        again = await r.resolve("www.example.test.", 1)
        assert again.from_cache
        assert again.ttl == 20
        assert again.source == "scripted"
        clock.advance(20)
        fresh = await r.resolve("www.example.test.")
        assert not fresh.from_cache
        assert len(backend.calls) == 2
        assert r.stats.cache_hits == 1
        assert r.stats.cache_misses == 2
        assert r.stats.queries == 3


async def test_negative_answers_are_cached(scripted, clock):
    backend = scripted(table={("gone.test.", "A"): NXDomain(ttl=50)})
    async with Resolver([backend], cache=TTLCache(clock=clock)) as r:
        with pytest.raises(NXDomain) as first:
            await r.resolve("gone.test")
        assert first.value.ttl == 50
        assert not first.value.from_cache
        clock.advance(10)
        with pytest.raises(NXDomain) as second:
            await r.resolve("gone.test")
        assert second.value.ttl == 40
        assert second.value.from_cache
        assert len(backend.calls) == 1
        assert r.stats.errors == {"NXDomain": 2}
        assert r.stats.cache_hits == 1


async def test_invalid_input_fails_before_io(scripted):
    backend = scripted()
    async with Resolver([backend]) as r:
        for bad in ("a..b", "x" * 300, "bad\x00name"):
            with pytest.raises(InvalidName):
                await r.resolve(bad)
        with pytest.raises(InvalidQuery):
            await r.resolve("ok.test", "NOPE")
        with pytest.raises(InvalidQuery):
            await r.resolve("ok.test", timeout=-1)
        assert backend.calls == []
    with pytest.raises(InvalidQuery):
        Resolver([backend], timeout=0)


async def test_serve_stale_and_background_refresh(scripted, clock, eventually):
    addresses = iter(["192.0.2.1", "192.0.2.2"])
    backend = scripted(table={("s.test.", "A"): lambda q: next(addresses)}, ttl=10)
    async with Resolver([backend], cache=TTLCache(serve_stale=600, clock=clock)) as r:
        assert (await r.resolve("s.test")).records[0].address == "192.0.2.1"
        clock.advance(11)
        stale = await r.resolve("s.test")
        assert stale.records[0].address == "192.0.2.1"
        assert stale.ttl == 30
        await eventually(lambda: len(backend.calls) == 2 and not r._refreshes)  # the background refresh ran
        refreshed = await r.resolve("s.test")
        assert refreshed.records[0].address == "192.0.2.2"
        assert refreshed.ttl == 10
        assert r.stats.cache_hits == 2


async def test_serve_stale_keeps_serving_while_upstream_fails(scripted, clock, eventually):
    replies = iter(["192.0.2.1", ServFail(), ServFail()])

    def reply(query):
        value = next(replies)
        if isinstance(value, Exception):
            raise value
        return value

    backend = scripted(table={("s.test.", "A"): reply}, ttl=10)
    async with Resolver([backend], cache=TTLCache(serve_stale=600, clock=clock)) as r:
        await r.resolve("s.test")
        clock.advance(11)
        for attempt in range(2):
            assert (await r.resolve("s.test")).records[0].address == "192.0.2.1"
            await eventually(lambda n=attempt: len(backend.calls) == n + 2 and not r._refreshes)
        assert len(backend.calls) == 3  # each failed refresh allows one more try


async def test_prefetch_refreshes_popular_entry_before_expiry(scripted, clock, eventually):
    addresses = iter(["192.0.2.1", "192.0.2.2"])
    backend = scripted(table={("p.test.", "A"): lambda q: next(addresses)}, ttl=100)
    async with Resolver([backend], cache=TTLCache(prefetch=True, clock=clock)) as r:
        await r.resolve("p.test")
        clock.advance(95)
        assert (await r.resolve("p.test")).records[0].address == "192.0.2.1"
        await eventually(lambda: len(backend.calls) == 2 and not r._refreshes)  # the prefetch ran
        answer = await r.resolve("p.test")
        assert answer.records[0].address == "192.0.2.2"
        assert answer.ttl == 100
        assert r.stats.upstream_lookups == 2


async def test_resolve_addresses_merges_both_families(scripted):
    backend = scripted(table={("d.test.", "A"): dual, ("d.test.", "AAAA"): dual,
                              ("v4.test.", "A"): "192.0.2.4", ("v4.test.", "AAAA"): NoAnswer,
                              ("none.test.", "A"): NoAnswer, ("none.test.", "AAAA"): NoAnswer,
                              ("nx.test.", "A"): NXDomain, ("nx.test.", "AAAA"): NXDomain})
    async with Resolver([backend]) as r:
        assert await r.resolve_addresses("d.test") == ["2001:db8::1", "192.0.2.1"]
        assert await r.resolve_addresses("d.test", family=socket.AF_INET) == ["192.0.2.1"]
        assert await r.resolve_addresses("v4.test") == ["192.0.2.4"]
        with pytest.raises(NoAnswer):
            await r.resolve_addresses("none.test")
        with pytest.raises(NXDomain):
            await r.resolve_addresses("nx.test")


async def test_getaddrinfo_matches_loop_getaddrinfo_shape(scripted):
    backend = scripted(table={("d.test.", "A"): dual, ("d.test.", "AAAA"): dual,
                              ("nx.test.", "A"): NXDomain, ("nx.test.", "AAAA"): NXDomain,
                              ("sf.test.", "A"): ServFail, ("sf.test.", "AAAA"): ServFail})
    async with Resolver([backend]) as r:
        infos = await r.getaddrinfo("d.test", 443, type=socket.SOCK_STREAM)
        expected = {
            "2001:db8::1": (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("2001:db8::1", 443, 0, 0)),
            "192.0.2.1": (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("192.0.2.1", 443)),
        }
        # in the RFC 6724 order glibc gives on this host (IPv4 first where IPv6 has no route)
        assert infos == [expected[a] for a in sort_destinations(["2001:db8::1", "192.0.2.1"])]
        infos = await r.getaddrinfo("d.test", "https", family=socket.AF_INET)
        assert [(i[1], i[4]) for i in infos] == [
            (socket.SOCK_STREAM, ("192.0.2.1", 443)), (socket.SOCK_DGRAM, ("192.0.2.1", 443))]  # no RAW with a port
        # literals: no lookup, same result as the loop's
        loop = asyncio.get_running_loop()
        assert await r.getaddrinfo("127.0.0.1", 80) == await loop.getaddrinfo("127.0.0.1", 80)
        with pytest.raises(socket.gaierror) as info:
            await r.getaddrinfo("nx.test", 80)
        assert info.value.errno == socket.EAI_NONAME
        with pytest.raises(socket.gaierror) as info:
            await r.getaddrinfo("sf.test", 80)
        assert info.value.errno == socket.EAI_AGAIN
        with pytest.raises(socket.gaierror) as info:
            await r.getaddrinfo("bad..name", 80)
        assert info.value.errno == socket.EAI_NONAME
        with pytest.raises(socket.gaierror) as info:
            await r.getaddrinfo(b"\xff\xfe.test", 80)
        assert info.value.errno == socket.EAI_NONAME
        assert len(await r.getaddrinfo(b"d.test", 80, type=socket.SOCK_STREAM)) == 2
        with pytest.raises(socket.gaierror) as info:
            await r.getaddrinfo("d.test", "no-such-service")
        assert info.value.errno == socket.EAI_SERVICE
        assert all(c == ("d.test.", "A") or c[0] != "127.0.0.1." for c in backend.calls)


async def test_stats_snapshot_is_exportable(scripted):
    backend = scripted(table={("a.test.", "A"): "192.0.2.1", ("n.test.", "A"): NXDomain})
    async with Resolver([backend]) as r:
        await r.resolve("a.test")
        await r.resolve("a.test")
        with pytest.raises(NXDomain):
            await r.resolve("n.test")
        snap = r.stats.snapshot()
    assert snap["queries"] == 3
    assert snap["cache_hits"] == 1
    assert snap["cache_misses"] == 2
    assert snap["errors"] == {"NXDomain": 1}
    assert snap["backends"]["scripted"]["answers"] == 1
    assert snap["backends"]["scripted"]["negatives"] == 1
    assert snap["backends"]["scripted"]["latency_mean"] >= 0


async def test_close_closes_backends_and_refuses_new_lookups(scripted):
    backend = scripted(table={("a.test.", "A"): "192.0.2.1"})
    r = Resolver([backend])
    await r.resolve("a.test")
    await r.aclose()
    assert backend.closed
    with pytest.raises(ResolverClosed):
        await r.resolve("b.test")


async def test_default_chain_is_hosts_system_cares():
    from asyncresolve.backends import CaresBackend, HostsBackend, SystemBackend

    async with Resolver() as r:
        assert [type(b) for b in r.backends] == [HostsBackend, SystemBackend, CaresBackend]
        answer = await r.resolve("localhost", "A")
        assert answer.source == "hosts"
        # MX is not the OS's: the chain hands it to c-ares (resolv.conf here is the test
        # namespace's loopback one, where nothing listens: a failure, never a packet off-box)
        with pytest.raises((ServFail, NetworkError, ResolveTimeout)) as info:
            await r.resolve("localhost", "MX", timeout=3)
        assert info.value.source == "cares"


async def test_cache_hit_path_creates_no_task_and_never_reaches_a_backend(scripted):
    backend = scripted(table={("hot.test.", "A"): "192.0.2.1"})
    loop = asyncio.get_running_loop()
    created = []
    default_factory = loop.get_task_factory()

    def counting_factory(loop, coro, **kwargs):
        created.append(coro)
        if default_factory is not None:
            return default_factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async with Resolver([backend]) as r:
        await r.resolve("hot.test")
        loop.set_task_factory(counting_factory)
        try:
            for _ in range(1000):
                answer = await r.resolve("hot.test")
        finally:
            loop.set_task_factory(default_factory)
        assert created == []
        assert answer.from_cache
        assert len(backend.calls) == 1
        assert r.stats.cache_hits == 1000


def _v4(query):
    return Answer(query.name, "A", [ARecord(query.name, 60, "192.0.2.1")], "scripted")


@pytest.mark.parametrize(
    ("port", "kind", "proto", "flags"),
    [
        (80, 0, socket.IPPROTO_UDP, 0),                        # proto without type: UDP only
        (80, socket.SOCK_STREAM, socket.IPPROTO_UDP, 0),       # mismatched type/proto: an error
        ("https", 0, 0, socket.AI_NUMERICSERV),                # a service name under AI_NUMERICSERV
        ("syslog", 0, 0, 0),                                   # a UDP-only service
        ("syslog", socket.SOCK_STREAM, 0, 0),                  # ... asked over TCP
        ("domain", socket.SOCK_DGRAM, 0, 0),
        (None, 0, 0, 0),
        (b"53", 0, 0, socket.AI_NUMERICSERV),
        (70000, socket.SOCK_STREAM, 0, 0),
    ],
)
async def test_getaddrinfo_ports_types_protos_and_flags_are_the_os_s(scripted, port, kind, proto, flags):
    """The entries for a looked-up name equal what the OS gives for its address."""
    backend = scripted(table={("d.test.", "A"): _v4})
    async with Resolver([backend]) as r:
        try:
            expected = socket.getaddrinfo("192.0.2.1", port, socket.AF_INET, kind, proto, flags)
        except socket.gaierror as error:
            with pytest.raises(socket.gaierror) as info:
                await r.getaddrinfo("d.test", port, family=socket.AF_INET, type=kind, proto=proto, flags=flags)
            assert info.value.errno == error.errno  # noqa: PT017 - `error` is the OS's, ours is info
        else:
            got = await r.getaddrinfo("d.test", port, family=socket.AF_INET, type=kind, proto=proto, flags=flags)
            assert got == expected


async def test_getaddrinfo_reads_numeric_forms_as_inet_aton_even_with_a_dns_only_chain(scripted):
    backend = scripted()  # answers nothing: a lookup would be NoBackend
    async with Resolver([backend]) as r:
        loop = asyncio.get_running_loop()
        for host in ("127.1", "0x7f.1", "2130706433", "0177.0.0.1", "::1", "fe80::1%1"):
            assert await r.getaddrinfo(host, 80) == await loop.getaddrinfo(host, 80), host
        assert backend.calls == []
