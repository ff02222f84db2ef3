"""aiohttp with asyncresolve as its resolver: real ClientSessions against local servers,
by names the lab serves."""

import asyncio
import socket

import aiohttp
import aiohttp.web
import pytest
from integration_support import CRAWL_ZONES, HOSTS, http_server, lab_resolver

from asyncresolve import AddressRefused, NXDomain
from asyncresolve.integrations.aiohttp import AiohttpResolver
from asyncresolve.policy import AddressPolicy


def session_for(resolver, **options):
    connector = aiohttp.TCPConnector(resolver=AiohttpResolver(resolver, **options), use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector)


async def test_session_fetches_a_page_by_lab_hostname(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server() as port, lab_resolver(lab) as resolver, session_for(resolver) as session:
        async with session.get(f"http://www.crawl.test:{port}/index.html") as response:
            assert response.status == 200
            assert await response.text() == f"host=www.crawl.test:{port} path=/index.html server=127.0.0.1"
        assert {q.type for q in lab.queries_for("www.crawl.test")} == {"A", "AAAA"}


async def test_nxdomain_is_client_connector_dns_error_naming_the_host_once(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with lab_resolver(lab) as resolver, session_for(resolver) as session:
        with pytest.raises(aiohttp.ClientConnectorDNSError) as info:
            await session.get("http://nope.crawl.test:8080/")
    error = info.value
    assert isinstance(error.os_error, socket.gaierror)
    assert error.os_error.errno == socket.EAI_NONAME
    assert isinstance(error.os_error.__cause__, NXDomain)
    assert str(error).count("nope.crawl.test") == 1, str(error)
    assert "NXDOMAIN" in str(error)


async def test_both_families_in_connect_order_for_af_unspec(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with lab_resolver(lab) as resolver:
        results = await AiohttpResolver(resolver, addrconfig=False).resolve("dual.crawl.test", 443, socket.AF_UNSPEC)
        v4_only = await AiohttpResolver(resolver).resolve("dual.crawl.test", 443, socket.AF_INET)
    # RFC 6724 as glibc: ::1 (precedence 50) before 127.0.0.1 (IPv4, precedence 10)
    assert [(r["host"], r["family"]) for r in results] == [("::1", socket.AF_INET6), ("127.0.0.1", socket.AF_INET)]
    assert all(r["hostname"] == "dual.crawl.test" and r["port"] == 443 and r["proto"] == 0 for r in results)
    assert results[0]["flags"] == socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    assert [r["host"] for r in v4_only] == ["127.0.0.1"]


async def test_numeric_hosts_need_no_lookup(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with lab_resolver(lab) as resolver:
        aio = AiohttpResolver(resolver)
        assert [r["host"] for r in await aio.resolve("127.0.0.1", 80, socket.AF_UNSPEC)] == ["127.0.0.1"]
        assert [r["host"] for r in await aio.resolve("0x7f.1", 80, socket.AF_UNSPEC)] == ["127.0.0.1"]
        assert [r["family"] for r in await aio.resolve("::1", 80, socket.AF_UNSPEC)] == [socket.AF_INET6]
    assert lab.query_count == 0


async def test_thousand_requests_to_fifty_hosts_make_at_most_fifty_lookups(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server() as port, lab_resolver(lab) as resolver:
        connector = aiohttp.TCPConnector(resolver=AiohttpResolver(resolver), use_dns_cache=False,
                                         family=socket.AF_INET, limit=200)
        async with aiohttp.ClientSession(connector=connector) as session:
            lab.reset_counters()

            async def fetch(i):
                host = HOSTS[i % len(HOSTS)]
                async with session.get(f"http://{host}.crawl.test:{port}/{i}") as response:
                    assert await response.text() == f"host={host}.crawl.test:{port} path=/{i} server=127.0.0.1"

            await asyncio.wait_for(asyncio.gather(*(fetch(i) for i in range(1000))), 60)
    assert lab.query_count <= 50, lab.query_count
    assert {q.name for q in lab.queries} == {f"{h}.crawl.test." for h in HOSTS}
    assert resolver.stats.upstream_lookups == 50
    assert resolver.stats.coalesced + resolver.stats.cache_hits > 0  # the rest were served without a lookup


async def test_concurrent_requests_with_both_families_ask_each_name_and_type_once(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server() as port, lab_resolver(lab) as resolver, session_for(resolver) as session:
        lab.reset_counters()

        async def fetch(i):
            async with session.get(f"http://{HOSTS[i % 10]}.crawl.test:{port}/") as response:
                assert response.status == 200

        await asyncio.gather(*(fetch(i) for i in range(200)))
    asked = [(q.name, q.type) for q in lab.queries]
    assert len(asked) == len(set(asked)) <= 20  # A and AAAA of 10 names, each once


async def test_policy_refusal_is_a_dns_error_caused_by_address_refused(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server() as port, lab_resolver(lab) as resolver:
        async with session_for(resolver, policy=AddressPolicy()) as session:
            with pytest.raises(aiohttp.ClientConnectorDNSError) as info:
                await session.get(f"http://www.crawl.test:{port}/")
        error = info.value.os_error
        assert isinstance(error, PermissionError)
        assert isinstance(error.__cause__, AddressRefused)
        assert error.__cause__.reason == "loopback"
        assert str(info.value).count("www.crawl.test") == 1
        # the same name passes once the policy lets this lab's address through
        allowed = AddressPolicy(allow=["127.0.0.1/32"])
        async with session_for(resolver, policy=allowed) as session, session.get(f"http://www.crawl.test:{port}/") as r:
            assert r.status == 200


async def test_numeric_forms_of_loopback_are_refused(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with lab_resolver(lab) as resolver:
        aio = AiohttpResolver(resolver, policy=AddressPolicy())
        for host in ("0x7f.1", "2130706433", "127.1", "::ffff:127.0.0.1", "::1"):
            with pytest.raises(PermissionError) as info:
                await aio.resolve(host, 80, socket.AF_UNSPEC)
            assert isinstance(info.value.__cause__, AddressRefused), host
    assert lab.query_count == 0


async def test_a_resolver_passed_in_is_left_open_and_an_own_one_is_closed(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    resolver = lab_resolver(lab)
    async with session_for(resolver):
        pass
    assert not resolver._closed
    await resolver.aclose()
    own = AiohttpResolver()
    await own.close()
    assert own.resolver._closed


async def test_ip_literal_guard_refuses_literal_hosts_before_connecting(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    hits = []

    async def handler(request):
        hits.append(request.path)
        return aiohttp.web.Response(text="reached")

    async with http_server(handler=handler) as port, lab_resolver(lab) as resolver:
        adapter = AiohttpResolver(resolver, policy=AddressPolicy())
        connector = aiohttp.TCPConnector(resolver=adapter, use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector, middlewares=[adapter.ip_literal_guard]) as session:
            for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "2130706433"):
                with pytest.raises(aiohttp.ClientConnectorError) as info:
                    await session.get(f"http://{host}:{port}/literal")
                assert isinstance(info.value.os_error, PermissionError), host
                assert isinstance(info.value.os_error.__cause__, AddressRefused), host
        # without the guard, aiohttp connects to a literal without asking its resolver
        unguarded = session_for(resolver, policy=AddressPolicy())
        async with unguarded as session, session.get(f"http://127.0.0.1:{port}/unguarded") as response:
            assert await response.text() == "reached"
        # the guard lets allowed literals through
        adapter = AiohttpResolver(resolver, policy=AddressPolicy(allow=["127.0.0.1/32"]))
        guarded = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=adapter),
                                        middlewares=[adapter.ip_literal_guard])
        async with guarded as session, session.get(f"http://127.0.0.1:{port}/allowed") as response:
            assert response.status == 200
    assert hits == ["/unguarded", "/allowed"]


async def test_failures_are_cached_for_their_negative_ttl(dns_lab):
    """aiohttp's own DNS cache does not keep failures: every request would ask again."""
    lab = await dns_lab(CRAWL_ZONES)
    async with lab_resolver(lab) as resolver, session_for(resolver) as session:
        for _ in range(5):
            with pytest.raises(aiohttp.ClientConnectorDNSError):
                await session.get("http://gone.crawl.test:8080/")
    assert sorted(q.type for q in lab.queries_for("gone.crawl.test")) == ["A", "AAAA"]


@pytest.mark.parametrize("host", ["", "a..b", "x" * 300, "bad name.test", "-\x00-", "nope"])
async def test_bad_hosts_are_dns_errors_not_crashes(dns_lab, host):
    lab = await dns_lab(CRAWL_ZONES)
    async with lab_resolver(lab, timeout=2.0) as resolver:
        with pytest.raises(socket.gaierror):
            await AiohttpResolver(resolver).resolve(host, 80, socket.AF_UNSPEC)
