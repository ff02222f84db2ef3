"""Counters a service can export: plain attributes, and ``snapshot()`` for a dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    def record_latency(self, seconds: float) -> None:
        self.latency_total += seconds
        if seconds > self.latency_max:
            self.latency_max = seconds

    @property
    def calls(self) -> int:
        return self.answers + self.negatives + self.errors

    @property
    def latency_mean(self) -> float:
        return self.latency_total / self.calls if self.calls else 0.0


@dataclass
class ResolverStats:
    """A resolver's counters (``resolver.stats``): plain attributes, ``backends[name]`` per
    backend, ``crashes`` in total, and ``snapshot()`` for a dict to export."""

    queries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    stale_served: int = 0
    prefetches: int = 0
    coalesced: int = 0
    upstream_lookups: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    backends: dict[str, BackendStats] = field(default_factory=dict)

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

    def snapshot(self) -> dict[str, Any]:
        """Every counter as a dict of plain values (JSON-ready)."""
        data = asdict(self)
        data["crashes"] = self.crashes
        for name, backend in self.backends.items():
            data["backends"][name]["latency_mean"] = backend.latency_mean
        return data
