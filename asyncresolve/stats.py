"""What a resolver did, for a service to watch: plain counters, latency histograms, ``snapshot()``.

Everything here is updated on the resolver's paths, so it costs one attribute increment, or,
for a backend's latency, one ``bisect`` into fixed buckets: no per-sample list, no lock (one
event loop owns a resolver). ``ResolverStats.snapshot()`` returns plain, JSON-serialisable
data; ``asyncresolve.prometheus`` exposes the same figures to a Prometheus registry.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

# Four buckets per doubling from 10 µs to ~170 s: a percentile read from them is within ~9 %
# of the true value, whatever the number of samples.
_SMALLEST = 1e-5
_PER_DOUBLING = 4
BUCKET_BOUNDS: tuple[float, ...] = tuple(_SMALLEST * 2 ** (i / _PER_DOUBLING) for i in range(97))
# The coarser buckets exported to Prometheus (one per doubling): exact sums of the fine ones.
EXPORTED_BOUNDS: tuple[float, ...] = BUCKET_BOUNDS[::_PER_DOUBLING]


class LatencyHistogram:
    """Counts of durations (seconds) in fixed log-scale buckets; percentiles without samples."""

    __slots__ = ("count", "counts", "max", "sum")

    def __init__(self) -> None:
        # counts[i] holds BUCKET_BOUNDS[i-1] < seconds <= BUCKET_BOUNDS[i]; the last one, overflow.
        self.counts = [0] * (len(BUCKET_BOUNDS) + 1)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKET_BOUNDS, seconds)] += 1
        self.count += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def quantile(self, q: float) -> float:
        """The duration below which a fraction ``q`` of the samples fall (0.0 when empty).

        Interpolated geometrically inside the bucket that holds the rank, and never more
        than the largest sample seen.
        """
        if not 0 <= q <= 1:
            raise ValueError("a quantile is between 0 and 1")
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for index, count in enumerate(self.counts):
            if count and seen + count >= rank:
                if index == len(BUCKET_BOUNDS):
                    return self.max
                upper = BUCKET_BOUNDS[index]
                lower = BUCKET_BOUNDS[index - 1] if index else 0.0
                fraction = (rank - seen) / count
                value = lower * (upper / lower) ** fraction if lower else upper * fraction
                return min(value, self.max)
            seen += count
        return self.max

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def cumulative(self, bounds: tuple[float, ...] = EXPORTED_BOUNDS) -> list[tuple[float, int]]:
        """``[(upper bound, samples <= bound), ...]`` for ``bounds`` (a subset of the buckets' bounds)."""
        result = []
        total = 0
        index = 0
        for bound in bounds:
            while index < len(BUCKET_BOUNDS) and BUCKET_BOUNDS[index] <= bound:
                total += self.counts[index]
                index += 1
            result.append((bound, total))
        return result

    def snapshot(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum": self.sum,
            "mean": self.mean,
            "max": self.max,
            "p50": self.quantile(0.5),
            "p90": self.quantile(0.9),
            "p99": self.quantile(0.99),
            "buckets": [[bound, count] for bound, count in self.cumulative() if count],
        }


@dataclass
class BackendStats:
    """Counters of one backend: outcomes (``answers``, ``negatives``, ``errors``, ``passes``,
    ``crashes``) and latency (``latency_total``, ``latency_max``, ``latency_mean``)."""

    answers: int = 0
    negatives: int = 0
    errors: int = 0
    passes: int = 0
    #: unexpected exceptions raised by the backend (bugs); also counted in ``errors``
    crashes: int = 0
    latency_total: float = 0.0
    latency_max: float = 0.0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram, repr=False, compare=False)

    def record_latency(self, seconds: float) -> None:
        self.latency_total += seconds
        if seconds > self.latency_max:
            self.latency_max = seconds
        histogram = self.latency  # LatencyHistogram.observe inlined: once per lookup
        histogram.counts[bisect_left(BUCKET_BOUNDS, seconds)] += 1
        histogram.count += 1
        histogram.sum += seconds
        if seconds > histogram.max:
            histogram.max = seconds

    @property
    def calls(self) -> int:
        return self.answers + self.negatives + self.errors

    @property
    def latency_mean(self) -> float:
        return self.latency_total / self.calls if self.calls else 0.0

    @property
    def latency_p50(self) -> float:
        return self.latency.quantile(0.5)

    @property
    def latency_p99(self) -> float:
        return self.latency.quantile(0.99)

    def snapshot(self) -> dict[str, Any]:
        """This backend's figures as plain data."""
        return {
            "answers": self.answers,
            "negatives": self.negatives,
            "errors": self.errors,
            "passes": self.passes,
            "crashes": self.crashes,
            "calls": self.calls,
            "latency_total": self.latency_total,
            "latency_max": self.latency_max,
            "latency_mean": self.latency_mean,
            "latency": self.latency.snapshot(),
        }


@dataclass
class ResolverStats:
    """A resolver's counters.

    ``queries`` calls of ``resolve``; ``cache_hits`` / ``cache_misses`` of the answer cache
    (a stale answer served is a hit, and also counts in ``stale_served``); ``prefetches``
    background refreshes of entries about to expire; ``coalesced`` callers that waited on
    a lookup already in flight instead of starting one; ``upstream_lookups`` walks of the
    chain; ``errors`` errors raised to callers, by exception class name; ``backends``
    each backend's outcomes and latency; ``crashes`` backend bugs in total. ``cache`` (set by
    the resolver) gives the cache's size in the snapshot.
    """

    queries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    stale_served: int = 0
    prefetches: int = 0
    coalesced: int = 0
    upstream_lookups: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    backends: dict[str, BackendStats] = field(default_factory=dict)
    cache: Any = field(default=None, repr=False, compare=False)

    def backend(self, name: str) -> BackendStats:
        """The counters of the backend *name* (created on first use)."""
        stats = self.backends.get(name)
        if stats is None:
            stats = self.backends[name] = BackendStats()
        return stats

    @property
    def crashes(self) -> int:
        """Unexpected exceptions raised by any backend (each one a bug, logged by the chain)."""
        return sum(backend.crashes for backend in self.backends.values())

    def count_error(self, error: BaseException) -> None:
        """Count an error returned to a caller, by class name."""
        name = type(error).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    @property
    def hit_ratio(self) -> float:
        """Cache hits over cache lookups (0.0 before the first)."""
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else 0.0

    @property
    def cache_entries(self) -> int | None:
        """Entries in the cache now (answers and backends' infrastructure), None without a cache."""
        if self.cache is None:
            return None
        try:
            return len(self.cache)
        except TypeError:  # a cache that cannot tell its size (a remote one)
            return None

    def snapshot(self) -> dict[str, Any]:
        """Every figure as plain data (ints, floats, str keys): ``json.dumps`` takes it as it is."""
        cache = self.cache
        return {
            "queries": self.queries,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "hit_ratio": self.hit_ratio,
            "stale_served": self.stale_served,
            "prefetches": self.prefetches,
            "coalesced": self.coalesced,
            "upstream_lookups": self.upstream_lookups,
            "errors": dict(self.errors),
            "crashes": self.crashes,
            "cache": None if cache is None else {
                "entries": self.cache_entries,
                "max_entries": getattr(cache, "max_entries", None),
                "evictions": getattr(cache, "evictions", None),
            },
            "backends": {name: backend.snapshot() for name, backend in self.backends.items()},
        }
