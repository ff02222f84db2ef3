"""Expose a resolver's ``stats`` to Prometheus: ``register(resolver)`` and they are scraped.

Needs the ``prometheus`` extra (``pip install 'asyncresolve[prometheus]'``); the rest of the
package never imports this module. The collector reads the counters at scrape time, so the
resolver's paths pay nothing for it::

    from prometheus_client import start_http_server
    from asyncresolve import Resolver
    from asyncresolve.prometheus import register

    resolver = Resolver()
    register(resolver)           # into prometheus_client's default REGISTRY
    start_http_server(9100)      # /metrics now shows asyncresolve_* series
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    REGISTRY,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from .stats import ResolverStats

_COUNTERS = (
    ("queries", "Calls of resolve()"),
    ("cache_hits", "Answers served from the cache (stale ones included)"),
    ("cache_misses", "Lookups the cache could not answer"),
    ("stale_served", "Expired answers served while a refresh ran (serve-stale)"),
    ("prefetches", "Background refreshes of cached answers about to expire"),
    ("coalesced", "Callers that shared a lookup already in flight"),
    ("upstream_lookups", "Walks of the backend chain"),
)


class ResolverCollector(Collector):
    """A ``prometheus_client`` collector of one resolver's ``stats``.

    :param source: a ``Resolver`` (anything with a ``stats`` attribute) or a ``ResolverStats``.
    :param namespace: prefix of every metric name.
    :param name: value of the ``resolver`` label, to tell several resolvers of one process apart.
    """

    def __init__(self, source: Any, *, namespace: str = "asyncresolve", name: str = "default") -> None:
        stats = source if isinstance(source, ResolverStats) else getattr(source, "stats", None)
        if not isinstance(stats, ResolverStats):
            raise TypeError(f"expected a Resolver or a ResolverStats, not {type(source).__name__}")
        self.stats = stats
        self.namespace = namespace
        self.name = name

    def collect(self) -> Iterator[Metric]:
        stats, ns, label = self.stats, self.namespace, [self.name]
        for attribute, documentation in _COUNTERS:
            counter = CounterMetricFamily(f"{ns}_{attribute}", documentation, labels=["resolver"])
            counter.add_metric(label, getattr(stats, attribute))
            yield counter

        errors = CounterMetricFamily(f"{ns}_errors", "Errors raised to callers, by kind",
                                     labels=["resolver", "kind"])
        for kind, count in sorted(stats.errors.items()):
            errors.add_metric([self.name, kind], count)
        yield errors

        ratio = GaugeMetricFamily(f"{ns}_cache_hit_ratio", "Cache hits over cache lookups", labels=["resolver"])
        ratio.add_metric(label, stats.hit_ratio)
        yield ratio
        entries = stats.cache_entries
        if entries is not None:
            size = GaugeMetricFamily(f"{ns}_cache_entries", "Entries in the cache now", labels=["resolver"])
            size.add_metric(label, entries)
            yield size

        outcomes = CounterMetricFamily(f"{ns}_backend_outcomes", "Backend calls by outcome",
                                       labels=["resolver", "backend", "outcome"])
        latency = HistogramMetricFamily(f"{ns}_backend_latency_seconds", "Latency of backend calls",
                                        labels=["resolver", "backend"])
        for backend_name, backend in sorted(stats.backends.items()):
            for outcome in ("answers", "negatives", "errors", "passes"):
                outcomes.add_metric([self.name, backend_name, outcome], getattr(backend, outcome))
            histogram = backend.latency
            buckets = [(_le(bound), float(count)) for bound, count in histogram.cumulative()]
            buckets.append(("+Inf", float(histogram.count)))
            latency.add_metric([self.name, backend_name], buckets, histogram.sum)
        yield outcomes
        yield latency


def _le(bound: float) -> str:
    return f"{bound:.6g}"


def register(source: Any, registry: CollectorRegistry = REGISTRY, **options: Any) -> ResolverCollector:
    """Register a ``ResolverCollector`` of ``source`` in ``registry``; returns it (to unregister)."""
    collector = ResolverCollector(source, **options)
    registry.register(collector)
    return collector


__all__ = ["ResolverCollector", "register"]
