"""Every counter of ``Resolver.stats`` moves when what it counts happens; snapshot and histogram."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from asyncresolve import NXDomain, Resolver, ServFail, TTLCache
from asyncresolve.stats import BUCKET_BOUNDS, LatencyHistogram, ResolverStats


async def test_serve_stale_counts_stale_served_in_resolver_stats(scripted, clock):
    # Regression: the cache counted stale answers on itself only; Resolver.stats stayed 0.
    backend = scripted(table={("s.test.", "A"): "192.0.2.1"}, ttl=10)
    async with Resolver([backend], cache=TTLCache(serve_stale=600, clock=clock)) as r:
        await r.resolve("s.test")
        backend.delay = 3600  # the refresh stays in flight: every later hit is stale
        clock.advance(11)
        for _ in range(3):
            stale = await r.resolve("s.test")
            assert stale.ttl == 30
        assert r.stats.stale_served == 3
        assert r.stats.cache_hits == 3
        assert r.stats.snapshot()["stale_served"] == 3


async def test_prefetch_counts_prefetches_in_resolver_stats(scripted, clock):
    # Regression: a prefetch refreshed the entry, yet Resolver.stats.prefetches stayed 0.
    addresses = iter(["192.0.2.1", "192.0.2.2"])
    backend = scripted(table={("p.test.", "A"): lambda q: next(addresses)}, ttl=100)
    async with Resolver([backend], cache=TTLCache(prefetch=True, clock=clock)) as r:
        await r.resolve("p.test")
        clock.advance(95)
        await r.resolve("p.test")
        await r.resolve("p.test")  # still refreshing: no second prefetch
        await asyncio.gather(*r._refreshes)
        assert r.stats.upstream_lookups == 2
        assert (await r.resolve("p.test")).records[0].address == "192.0.2.2"
        assert r.stats.prefetches == 1
        assert r.stats.snapshot()["prefetches"] == 1


async def test_queries_hits_misses_and_hit_ratio(scripted):
    backend = scripted(table={("a.test.", "A"): "192.0.2.1"})
    async with Resolver([backend]) as r:
        assert r.stats.hit_ratio == 0.0
        await r.resolve("a.test")
        for _ in range(3):
            await r.resolve("a.test")
        assert (r.stats.queries, r.stats.cache_hits, r.stats.cache_misses) == (4, 3, 1)
        assert r.stats.hit_ratio == pytest.approx(0.75)
        assert r.stats.upstream_lookups == 1
        snap = r.stats.snapshot()
        assert snap["hit_ratio"] == pytest.approx(0.75)
        assert snap["cache"] == {"entries": 1, "max_entries": 100_000, "evictions": 0}


async def test_coalesced_waiters_and_one_upstream_lookup(scripted):
    backend = scripted(table={("c.test.", "A"): "192.0.2.1"}, delay=0.05)
    async with Resolver([backend]) as r:
        await asyncio.gather(*(r.resolve("c.test") for _ in range(50)))
        assert r.stats.coalesced == 49
        assert r.stats.upstream_lookups == 1
        assert len(backend.calls) == 1


async def test_errors_by_kind_including_negative_answers_from_the_cache(scripted):
    backend = scripted(table={("nx.test.", "A"): NXDomain, ("bad.test.", "A"): ServFail})
    async with Resolver([backend]) as r:
        for _ in range(2):
            with pytest.raises(NXDomain):
                await r.resolve("nx.test")
        with pytest.raises(ServFail):
            await r.resolve("bad.test")
        assert r.stats.errors == {"NXDomain": 2, "ServFail": 1}
        assert r.stats.cache_hits == 1  # the second NXDomain came from the cache
        assert r.stats.snapshot()["errors"] == {"NXDomain": 2, "ServFail": 1}


async def test_backend_outcomes_and_latency(scripted):
    first = scripted(name="first", table={("ok.test.", "A"): "192.0.2.1", ("nx.test.", "A"): NXDomain,
                                          ("fail.test.", "A"): ServFail})
    second = scripted(name="second", table={("other.test.", "A"): "192.0.2.2", ("fail.test.", "A"): "192.0.2.3"},
                      delay=0.02)
    async with Resolver([first, second]) as r:
        await r.resolve("ok.test")
        with pytest.raises(NXDomain):
            await r.resolve("nx.test")
        await r.resolve("fail.test")  # first fails, second answers
        await r.resolve("other.test")  # not first's: it passes
        one, two = r.stats.backends["first"], r.stats.backends["second"]
        assert (one.answers, one.negatives, one.errors, one.passes) == (1, 1, 1, 1)
        assert (two.answers, two.negatives, two.errors, two.passes) == (2, 0, 0, 0)
        assert one.calls == 3
        assert one.latency.count == 3
        assert two.latency.count == 2
        assert 0.015 <= two.latency_p50 <= two.latency_max
        assert two.latency_p99 <= two.latency_max
        snap = r.stats.snapshot()["backends"]["second"]
        assert snap["answers"] == 2
        assert snap["latency"]["count"] == 2
        assert snap["latency"]["p50"] == pytest.approx(two.latency_p50)


async def test_snapshot_is_plain_json(scripted):
    backend = scripted(table={("a.test.", "A"): "192.0.2.1", ("nx.test.", "A"): NXDomain})
    async with Resolver([backend]) as r:
        await r.resolve("a.test")
        with pytest.raises(NXDomain):
            await r.resolve("nx.test")
        snap = r.stats.snapshot()
        assert json.loads(json.dumps(snap)) == snap
        assert snap["backends"]["scripted"]["latency"]["buckets"][-1][1] == 2


async def test_snapshot_without_cache(scripted):
    backend = scripted(table={("a.test.", "A"): "192.0.2.1"})
    async with Resolver([backend], cache=None) as r:
        await r.resolve("a.test")
        assert r.stats.snapshot()["cache"] is None
        assert r.stats.cache_entries is None


def test_cache_evictions_in_snapshot(clock, scripted):
    cache = TTLCache(max_entries=2, clock=clock)
    stats = ResolverStats(cache=cache)
    for i in range(3):
        cache.put(("k", i), i, ttl=60)
    assert stats.snapshot()["cache"] == {"entries": 2, "max_entries": 2, "evictions": 1}


def test_histogram_percentiles_within_bucket_error():
    rng = random.Random(7)
    samples = [rng.lognormvariate(-6, 1.2) for _ in range(20_000)]
    histogram = LatencyHistogram()
    for s in samples:
        histogram.observe(s)
    samples.sort()
    for q in (0.5, 0.9, 0.99):
        exact = samples[int(q * len(samples)) - 1]
        assert histogram.quantile(q) == pytest.approx(exact, rel=0.2), q
    assert histogram.count == 20_000
    assert histogram.max == samples[-1]
    assert histogram.sum == pytest.approx(sum(samples))
    assert len(histogram.counts) == len(BUCKET_BOUNDS) + 1  # fixed size, whatever the samples


def test_histogram_edges():
    histogram = LatencyHistogram()
    assert histogram.quantile(0.99) == 0.0
    histogram.observe(0.0)
    histogram.observe(1e6)  # past the last bucket: the overflow, reported as the max
    assert histogram.quantile(1.0) == 1e6
    assert histogram.quantile(0.0) == 0.0
    assert histogram.cumulative()[-1][1] == 1  # the overflow sample is in +Inf only
    with pytest.raises(ValueError, match="a quantile is between 0 and 1"):
        histogram.quantile(1.5)


async def test_prometheus_collector_in_a_real_registry(scripted):
    from prometheus_client import CollectorRegistry, generate_latest

    from asyncresolve.prometheus import ResolverCollector, register

    backend = scripted(table={("a.test.", "A"): "192.0.2.1", ("nx.test.", "A"): NXDomain})
    async with Resolver([backend]) as r:
        registry = CollectorRegistry()
        register(r, registry, name="main")
        await r.resolve("a.test")
        await r.resolve("a.test")
        with pytest.raises(NXDomain):
            await r.resolve("nx.test")

        def value(metric: str, **labels: str) -> float | None:
            return registry.get_sample_value(metric, {"resolver": "main", **labels})

        assert value("asyncresolve_queries_total") == 3
        assert value("asyncresolve_cache_hits_total") == 1
        assert value("asyncresolve_cache_misses_total") == 2
        assert value("asyncresolve_upstream_lookups_total") == 2
        assert value("asyncresolve_stale_served_total") == 0
        assert value("asyncresolve_errors_total", kind="NXDomain") == 1
        assert value("asyncresolve_cache_entries") == 2
        assert value("asyncresolve_cache_hit_ratio") == pytest.approx(1 / 3)
        assert value("asyncresolve_backend_outcomes_total", backend="scripted", outcome="answers") == 1
        assert value("asyncresolve_backend_outcomes_total", backend="scripted", outcome="negatives") == 1
        assert value("asyncresolve_backend_latency_seconds_count", backend="scripted") == 2
        assert value("asyncresolve_backend_latency_seconds_bucket", backend="scripted", le="+Inf") == 2
        text = generate_latest(registry).decode()
        assert 'asyncresolve_backend_latency_seconds_bucket{backend="scripted",le="0.00128",resolver="main"}' in text
        await r.resolve("a.test")
        assert value("asyncresolve_cache_hits_total") == 2  # read at scrape time
    with pytest.raises(TypeError):
        ResolverCollector(object())


def test_hot_entry_survives_churn_with_second_chance_eviction(clock):
    cache = TTLCache(max_entries=4, clock=clock)
    hot = ("hot.test.", "A", "IN")
    cache.put(hot, "hot", ttl=60)
    for i in range(100):
        assert cache.lookup(hot) == "hot"  # a hit marks it, without reordering the table
        cache.put(("cold", i), i, ttl=60)
    assert cache.lookup(hot) == "hot"
    assert len(cache) == 4
    assert cache.evictions == 97
    assert cache.lookup(("cold", 0)) is None
    assert cache.lookup(("cold", 99)) == 99


async def test_prometheus_several_resolvers_in_one_registry(scripted):
    from prometheus_client import CollectorRegistry

    from asyncresolve.prometheus import register

    registry = CollectorRegistry()
    backend = scripted(table={("a.test.", "A"): "192.0.2.1"})
    async with Resolver([backend]) as web, Resolver([backend]) as mail:
        first = register(web, registry, name="web")
        assert register(mail, registry, name="mail") is first
        with pytest.raises(ValueError, match="'mail' is already collected"):
            register(mail, registry, name="mail")
        await web.resolve("a.test")
        for _ in range(3):
            await mail.resolve("a.test")
        assert registry.get_sample_value("asyncresolve_queries_total", {"resolver": "web"}) == 1
        assert registry.get_sample_value("asyncresolve_queries_total", {"resolver": "mail"}) == 3
        first.remove("mail")
        assert registry.get_sample_value("asyncresolve_queries_total", {"resolver": "mail"}) is None
