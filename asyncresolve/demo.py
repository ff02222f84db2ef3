"""``asyncresolve demo``: the library at work against an embedded lab, offline.

It starts a root → TLD → zone hierarchy of authoritative servers on loopback addresses
(``asyncresolve.testing.DNSLab``), then resolves through real chains: the hosts file, c-ares
against the lab's stub server, and the iterative resolver walking from the lab's root. The
OS backend is left out on purpose: ``getaddrinfo`` would ask the machine's nameserver, and
the demo sends packets to loopback only.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from .answer import Answer
from .backends.base import Backend
from .backends.hosts import HostsBackend
from .errors import ResolveError
from .resolver import Resolver

DEMO_ZONES = {
    "example.test.": """
        @        3600 IN SOA   ns1 hostmaster 2026112501 7200 900 1209600 300
        @        3600 IN NS    ns1
        ns1      3600 IN A     127.0.0.1
        @        300  IN MX    10 mail
        @        300  IN MX    20 backup-mail
        @        600  IN TXT   "v=spf1 mx -all"
        www      60   IN A     192.0.2.10
        www      60   IN AAAA  2001:db8::10
        mail     300  IN A     192.0.2.25
        backup-mail 300 IN A   192.0.2.26
        alias    120  IN CNAME www
        shop     300  IN CNAME store.shop.test.
        _sip._tcp 900 IN SRV   10 60 5060 sip
        sip      900  IN A     192.0.2.50
        @        3600 IN CAA   0 issue "ca.example"
        *.users  30   IN A     192.0.2.77
    """,
    "shop.test.": """
        @        3600 IN SOA   ns1 hostmaster 1 7200 900 1209600 120
        @        3600 IN NS    ns1
        ns1      3600 IN A     127.0.0.1
        store    45   IN A     198.51.100.7
    """,
    "corp.example.": """
        @        3600 IN SOA   ns1 hostmaster 1 7200 900 1209600 60
        @        3600 IN NS    ns1
        ns1      3600 IN A     127.0.0.1
        intranet 600  IN A     203.0.113.5
    """,
}


def _heading(text: str) -> None:
    print(f"\n== {text}")


def _show(answer: Answer, elapsed: float) -> None:
    flag = " (cache)" if answer.from_cache else ""
    print(f"   {answer.name} {answer.rdtype}  source={answer.source}{flag}  ttl={answer.ttl}  "
          f"{elapsed * 1000:.1f} ms")
    for record in (*answer.cname_chain, *answer.records):
        print(f"     {record}")


async def _lookup(resolver: Resolver, name: str, rdtype: str) -> Answer | None:
    started = time.perf_counter()
    try:
        answer = await resolver.resolve(name, rdtype)
    except ResolveError as error:
        ttl = getattr(error, "ttl", None)
        extra = f"  negative ttl={ttl}" if ttl is not None else ""
        print(f"   {name} {rdtype}  -> {type(error).__name__}: {error}{extra}")
        return None
    _show(answer, time.perf_counter() - started)
    return answer


def _optional_backend(kind: str, **kwargs: Any) -> Backend | None:
    try:
        if kind == "cares":
            from .backends.cares import CaresBackend

            return CaresBackend(**kwargs)
        from .backends.iterative import IterativeBackend

        return IterativeBackend(**kwargs)
    except ImportError:
        return None


async def run_demo(quick: bool = False) -> int:
    from .testing import DNSLab

    started = time.perf_counter()
    print("asyncresolve demo: an offline DNS lab on loopback, and the resolver at work")
    async with DNSLab(DEMO_ZONES) as lab:
        stub_ip, stub_port = lab.stub_server
        print(f"   lab: {len(lab.servers)} authoritative servers on port {lab.port}; "
              f"root {', '.join(ip for ip, _ in lab.root_hints)}; stub server {stub_ip}:{stub_port}")
        with tempfile.TemporaryDirectory() as tmp:
            hosts = Path(tmp, "hosts")
            await asyncio.to_thread(hosts.write_text, "192.0.2.200 pinned.example.test\n")
            cares = _optional_backend("cares", nameservers=[f"{stub_ip}:{stub_port}"], timeout=1.0)
            chain: list[Backend] = [HostsBackend(hosts)]
            if cares is not None:
                chain.append(cares)
            async with Resolver(chain, timeout=3.0) as resolver:
                names = " -> ".join(b.name for b in chain)
                if cares is None:
                    print("   (c-ares backend not installed: showing the hosts file only)")
                await _chain_tour(resolver, names)
                if cares is not None:
                    await _cache_and_coalescing(resolver, lab)
                    print(f"   resolver stats: {resolver.stats.snapshot()['cache_hits']} cache hits, "
                          f"{resolver.stats.coalesced} coalesced waiters, "
                          f"{resolver.stats.upstream_lookups} upstream lookups")
        await _bulk_tour(lab, quick)
        await _iterative_tour(lab, quick)
    await crawler_tour()
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s; every packet stayed on loopback")
    return 0


async def _chain_tour(resolver: Resolver, names: str) -> None:
    _heading(f"lookups through the chain {names}")
    await _lookup(resolver, "pinned.example.test", "A")
    for rdtype in ("A", "AAAA", "MX", "TXT", "CAA"):
        await _lookup(resolver, "www.example.test" if rdtype in ("A", "AAAA") else "example.test", rdtype)
    await _lookup(resolver, "_sip._tcp.example.test", "SRV")
    await _lookup(resolver, "bob.users.example.test", "A")
    _heading("a CNAME chain, within a zone and across zones")
    await _lookup(resolver, "alias.example.test", "A")
    await _lookup(resolver, "shop.example.test", "A")
    _heading("negative answers, with their RFC 2308 TTL (the SOA minimum)")
    await _lookup(resolver, "nope.example.test", "A")
    await _lookup(resolver, "www.example.test", "MX")


async def _cache_and_coalescing(resolver: Resolver, lab: Any) -> None:
    _heading("a cache hit: no packet, the TTL counts down")
    lab.reset_counters()
    await asyncio.sleep(1.1)
    await _lookup(resolver, "www.example.test", "A")
    print(f"   lab servers received {lab.query_count} queries for it")
    _heading("a coalesced burst: 500 concurrent lookups of a name not yet cached")
    lab.reset_counters()
    before = resolver.stats.coalesced
    started = time.perf_counter()
    answers = await asyncio.gather(*(resolver.resolve("mail.example.test", "A") for _ in range(500)))
    elapsed = time.perf_counter() - started
    print(f"   {len(answers)} answers ({answers[0].addresses[0]}) in {elapsed * 1000:.1f} ms; "
          f"{resolver.stats.coalesced - before} waiters shared one lookup; "
          f"the lab received {lab.query_count} query")


async def _bulk_tour(lab: Any, quick: bool) -> None:
    """``resolve_many`` over a few thousand lab names: progress bar (on a terminal), per-status
    summary, wildcard detection and a few of the JSON lines ``asyncresolve bulk`` writes."""
    import json
    import sys

    from .bulk.pool import PoolBackend
    from .bulk.progress import Progress, format_counts
    from .bulk.runner import BulkRun
    from .bulk.wildcards import WildcardDetector
    from .bulk.writers import to_json

    count = 1000 if quick else 3000
    _heading(f"bulk: {count + 6} names streamed through resolve_many, 200 in flight, wildcards detected")
    stub_ip, stub_port = lab.stub_server
    try:
        pool = PoolBackend([f"{stub_ip}:{stub_port}"], timeout=1.0)
    except ImportError:
        print("   (c-ares backend not installed: no bulk run)")
        return

    def names() -> Any:  # a generator: resolve_many streams, nothing is materialised
        for i in range(count):
            yield f"user{i}.users.example.test" if i % 3 else f"gone{i}.example.test"
        yield from ("www.example.test", "mail.example.test", "example.test", "bad..name",
                    "shop.example.test", "sip.example.test")

    async with Resolver([pool], timeout=3.0) as resolver:
        run = BulkRun(resolver, names(), ("A",), concurrency=200, wildcards=WildcardDetector(resolver))
        progress = Progress(run, bar=sys.stderr.isatty(), stream=sys.stderr)
        progress.set_total(count + 6)
        progress.start()
        samples: dict[str, Any] = {}
        try:
            async for result in run.results():
                if result.status not in samples or (result.wildcard is False and "wildcard=False" not in samples):
                    samples["wildcard=False" if result.wildcard is False else result.status] = result
        finally:
            await progress.stop()
        print(f"   {run.done} results in {time.perf_counter() - progress.started:.2f} s: "
              f"{format_counts(dict(run.counts))}; {run.wildcard_hits} answers match the *.users wildcard "
              f"({run.wildcards.probes_sent if run.wildcards else 0} probe queries)")
        print("   a few of the JSON lines `asyncresolve bulk` writes (massdns/zdns layout):")
        for result in samples.values():
            print("     " + json.dumps(to_json(result), separators=(",", ":")))


async def _iterative_tour(lab: Any, quick: bool) -> None:
    steps: list[Any] = []
    backend = _optional_backend("iterative", root_hints=lab.root_hints, port=lab.port, trace=steps.append)
    if backend is None:
        return
    _heading("the iterative backend: from the lab's root, following referrals")
    async with Resolver([backend], timeout=5.0) as resolver:
        await _lookup(resolver, "store.shop.test", "A")
        for step in steps:
            print(f"     trace: {step}")
        steps.clear()
        await _lookup(resolver, "intranet.corp.example", "A")
        roots = {ip for ip, _ in lab.root_hints}
        asked_root = sum(1 for step in steps if step.server and step.server[0] in roots)
        print(f"   {sum(1 for step in steps if step.server)} upstream queries, {asked_root} of them to the root: "
              "the root's referral to .test was cached, .example was new")
        if not quick:
            await _lookup(resolver, "nope.shop.test", "A")
            await _lookup(resolver, "alias.example.test", "AAAA")


# -- the crawler job: aiohttp through asyncresolve, with the SSRF guard ---------------------------

CRAWL_ZONES = {
    "crawl.test.": """
        @        3600 IN SOA   ns1 hostmaster 1 7200 900 1209600 300
        @        3600 IN NS    ns1
        ns1      3600 IN A     127.0.0.1
        www      300  IN A     127.0.0.1
        blog     300  IN A     127.0.0.1
        shop     300  IN CNAME www
        admin    300  IN A     127.0.0.53
        intranet 300  IN A     127.0.0.54
        metadata 300  IN A     169.254.169.254
        db       300  IN A     10.0.0.1
    """,
}


async def crawler_tour(pages: int = 60) -> None:
    """An aiohttp client fetching pages by lab names through asyncresolve, then the SSRF guard.

    Self-contained: its own lab and a local web server on 127.0.0.1. The policy treats that
    one address as the public web (the lab's names all live on loopback) and refuses the rest.
    """
    try:
        import aiohttp
        from aiohttp import web

        from .integrations.aiohttp import AiohttpResolver
    except ImportError:
        print("\n== the crawler job: skipped (pip install 'asyncresolve[aiohttp]')")
        return
    from .backends.cares import CaresBackend
    from .policy import AddressPolicy
    from .testing import DNSLab

    _heading(f"the crawler job: aiohttp fetching {pages} pages by name, each connection resolved")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=f"page {request.path} of {request.host}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with DNSLab(CRAWL_ZONES) as lab, Resolver([CaresBackend(["{}:{}".format(*lab.stub_server)])]) as resolver:
            adapter = AiohttpResolver(resolver, policy=AddressPolicy(allow=["127.0.0.1/32"]))  # the "public web"
            # force_close: a new connection, so a new lookup, for every page
            connector = aiohttp.TCPConnector(resolver=adapter, use_dns_cache=False, force_close=True)
            async with aiohttp.ClientSession(connector=connector, middlewares=[adapter.ip_literal_guard]) as session:
                hosts = ["www", "blog", "shop"]
                started = time.perf_counter()
                for i in range(pages):
                    url = f"http://{hosts[i % 3]}.crawl.test:{port}/{i}"
                    async with session.get(url) as response:
                        body = await response.text()
                    if i < 3:
                        print(f"   GET {url} -> {response.status} {body!r}")
                elapsed = time.perf_counter() - started
                stats = resolver.stats
                print(f"   {pages} pages in {elapsed * 1000:.0f} ms; the connector asked {stats.queries} lookups "
                      f"(A and AAAA per connection), {stats.cache_hits} were cache hits and {stats.coalesced} "
                      f"coalesced: the lab received {lab.query_count} queries, "
                      f"{stats.queries - lab.query_count} lookups saved")
                _heading("the SSRF guard: names and numeric hosts that lead into the crawler's own network")
                # every refused address here is on loopback, so even a failing guard sends nothing off the host
                for url in (f"http://admin.crawl.test:{port}/", f"http://intranet.crawl.test:{port}/latest/",
                            f"http://0x7f.0.0.53:{port}/", f"http://[::ffff:127.0.0.53]:{port}/",
                            f"http://2130706485:{port}/"):
                    try:
                        async with session.get(url) as response:
                            print(f"   GET {url} -> {response.status} (not refused!)")
                    except aiohttp.ClientConnectorError as error:
                        print(f"   GET {url} -> refused: {error.os_error.__cause__}")
                # names into other internal ranges: only looked up through the adapter, never connected to
                for name in ("metadata.crawl.test", "db.crawl.test"):
                    try:
                        await adapter.resolve(name, port)
                        print(f"   resolve {name} -> (not refused!)")
                    except OSError as error:
                        print(f"   resolve {name} -> refused: {error.__cause__}")
    finally:
        await runner.cleanup()
