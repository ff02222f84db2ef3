"""Counters a service can export: plain attributes, and ``snapshot()`` for a dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BackendStats:
    answers: int = 0
    negatives: int = 0
    errors: int = 0
    passes: int = 0
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
        stats = self.backends.get(name)
        if stats is None:
            stats = self.backends[name] = BackendStats()
        return stats

    def count_error(self, error: BaseException) -> None:
        name = type(error).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        for name, backend in self.backends.items():
            data["backends"][name]["latency_mean"] = backend.latency_mean
        return data
