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

import weakref
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
    """A ``prometheus_client`` collector of resolvers' ``stats``, one ``resolver`` label value each.

    :param source: a ``Resolver`` (anything with a ``stats`` attribute) or a ``ResolverStats``;
        more can be added with :meth:`add`.
    :param namespace: prefix of every metric name.
    :param name: value of the ``resolver`` label for ``source``.
    """

    def __init__(self, source: Any = None, *, namespace: str = "asyncresolve", name: str = "default") -> None:
        self.namespace = namespace
        self.sources: dict[str, ResolverStats] = {}
        if source is not None:
            self.add(source, name)

    def add(self, source: Any, name: str = "default") -> None:
        """Also collect ``source``'s figures, labelled ``resolver=name``."""
        stats = source if isinstance(source, ResolverStats) else getattr(source, "stats", None)
        if not isinstance(stats, ResolverStats):
            raise TypeError(f"expected a Resolver or a ResolverStats, not {type(source).__name__}")
        if name in self.sources:
            raise ValueError(f"a resolver labelled {name!r} is already collected")
        self.sources[name] = stats

    def remove(self, name: str) -> None:
        self.sources.pop(name, None)

    def collect(self) -> Iterator[Metric]:
        ns = self.namespace
        sources = sorted(self.sources.items())
        for attribute, documentation in _COUNTERS:
            counter = CounterMetricFamily(f"{ns}_{attribute}", documentation, labels=["resolver"])
            for name, stats in sources:
                counter.add_metric([name], getattr(stats, attribute))
            yield counter

        errors = CounterMetricFamily(f"{ns}_errors", "Errors raised to callers, by kind",
                                     labels=["resolver", "kind"])
        ratio = GaugeMetricFamily(f"{ns}_cache_hit_ratio", "Cache hits over cache lookups", labels=["resolver"])
        size = GaugeMetricFamily(f"{ns}_cache_entries", "Entries in the cache now", labels=["resolver"])
        outcomes = CounterMetricFamily(f"{ns}_backend_outcomes", "Backend calls by outcome",
                                       labels=["resolver", "backend", "outcome"])
        latency = HistogramMetricFamily(f"{ns}_backend_latency_seconds", "Latency of backend calls",
                                        labels=["resolver", "backend"])
        for name, stats in sources:
            for kind, count in sorted(stats.errors.items()):
                errors.add_metric([name, kind], count)
            ratio.add_metric([name], stats.hit_ratio)
            entries = stats.cache_entries
            if entries is not None:
                size.add_metric([name], entries)
            for backend_name, backend in sorted(stats.backends.items()):
                for outcome in ("answers", "negatives", "errors", "passes"):
                    outcomes.add_metric([name, backend_name, outcome], getattr(backend, outcome))
                histogram = backend.latency
                buckets = [(_le(bound), float(count)) for bound, count in histogram.cumulative()]
                buckets.append(("+Inf", float(histogram.count)))
                latency.add_metric([name, backend_name], buckets, histogram.sum)
        yield errors
        yield ratio
        yield size
        yield outcomes
        yield latency


def _le(bound: float) -> str:
    return f"{bound:.6g}"


_per_registry: weakref.WeakKeyDictionary[CollectorRegistry, ResolverCollector] = weakref.WeakKeyDictionary()


def register(source: Any, registry: CollectorRegistry = REGISTRY, *, name: str = "default",
             namespace: str = "asyncresolve") -> ResolverCollector:
    """Collect ``source``'s figures in ``registry``, labelled ``resolver=name``; returns the collector.

    Resolvers registered in the same registry share one collector (a registry refuses two
    collectors of the same metric names), each with its own label value.
    """
    collector = _per_registry.get(registry)
    if collector is None or collector.namespace != namespace:
        collector = ResolverCollector(source, namespace=namespace, name=name)
        registry.register(collector)
        _per_registry[registry] = collector
    else:
        collector.add(source, name)
    return collector


__all__ = ["ResolverCollector", "register"]
