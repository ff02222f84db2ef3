"""The shared machinery of every scenario: bounded passes, samples, summaries.

A *pass* resolves a list of names with a number of workers and records how many answers
were right, wrong or errors, the elapsed time and every lookup's latency (in the same
fixed log-scale histogram that ``Resolver.stats`` uses: no per-sample list). A pass is
bounded in time: past ``limit`` the workers take no new name, and the names not taken are
reported as ``cut`` (not failures: the rate is over what was done). Summaries give the
median over rounds and the spread (min, max), never just the best.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncresolve.stats import BUCKET_BOUNDS, LatencyHistogram

Lookup = Callable[[str], Awaitable[str | None]]
HARD_MARGIN = 30.0  # seconds past a pass's limit after which in-flight lookups are cancelled


@dataclass
class PassResult:
    """One pass of one contender."""

    ok: int = 0
    wrong: int = 0
    errors: int = 0
    cut: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0  # this process's CPU time over the pass (time.process_time): servers not in it
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    first_error: str = ""

    @property
    def done(self) -> int:
        return self.ok + self.wrong + self.errors

    @property
    def qps(self) -> float:
        """Answers (right or not, errors too) per second: what the client got through."""
        return self.done / self.elapsed if self.elapsed else 0.0

    @property
    def success(self) -> float:
        return self.ok / self.done if self.done else 0.0

    @property
    def cpu_us_per_name(self) -> float:
        """The client's CPU time per lookup done, in microseconds (the machine's load moves it less)."""
        return self.cpu / self.done * 1e6 if self.done else 0.0


async def run_pass(names: Sequence[str], expected: Callable[[str], str | None], concurrency: int,
                   lookup: Lookup, limit: float) -> PassResult:
    """Resolve ``names`` with ``concurrency`` workers; each answer is checked against ``expected``."""
    loop = asyncio.get_running_loop()
    result = PassResult()
    histogram = result.latency
    position = 0
    deadline = 0.0

    async def worker() -> None:
        nonlocal position
        perf = time.perf_counter
        while position < len(names) and loop.time() < deadline:
            name = names[position]
            position += 1
            started = perf()
            try:
                got = await lookup(name)
            except Exception as exc:  # noqa: BLE001 - counted: a contender that drops names must show it
                histogram.observe(perf() - started)
                result.errors += 1
                if not result.first_error:
                    result.first_error = f"{name}: {type(exc).__name__}: {exc}"[:200]
                continue
            histogram.observe(perf() - started)
            if got == expected(name):
                result.ok += 1
            else:
                result.wrong += 1
                if not result.first_error:
                    result.first_error = f"{name}: got {got!r}, expected {expected(name)!r}"

    gc.collect()
    deadline = loop.time() + limit
    cpu_started = time.process_time()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit + HARD_MARGIN):
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(names)))))
    except TimeoutError:
        result.first_error = result.first_error or f"pass cancelled {HARD_MARGIN:.0f} s past its limit"
    result.elapsed = time.perf_counter() - started
    result.cpu = time.process_time() - cpu_started
    result.cut = len(names) - result.done
    return result


def merged_histogram(histograms: Sequence[LatencyHistogram]) -> LatencyHistogram:
    merged = LatencyHistogram()
    for h in histograms:
        merged.counts = [a + b for a, b in zip(merged.counts, h.counts, strict=True)]
        merged.count += h.count
        merged.sum += h.sum
        merged.max = max(merged.max, h.max)
    return merged


def summarise(passes: Sequence[PassResult]) -> dict[str, Any]:
    """Median and spread of qps over rounds; success and latency over every lookup of every round."""
    rates = [p.qps for p in passes]
    cpus = [p.cpu_us_per_name for p in passes]
    latency = merged_histogram([p.latency for p in passes])
    done = sum(p.done for p in passes)
    return {
        "rounds": len(passes),
        "qps_median": statistics.median(rates) if rates else 0.0,
        "qps_min": min(rates, default=0.0),
        "qps_max": max(rates, default=0.0),
        "qps_rounds": rates,
        "cpu_us_per_name_median": statistics.median(cpus) if cpus else 0.0,
        "cpu_us_per_name_min": min(cpus, default=0.0),
        "cpu_us_per_name_rounds": cpus,
        "lookups": done,
        "ok": sum(p.ok for p in passes),
        "wrong": sum(p.wrong for p in passes),
        "errors": sum(p.errors for p in passes),
        "cut": sum(p.cut for p in passes),
        "success": sum(p.ok for p in passes) / done if done else 0.0,
        "p50_ms": latency.quantile(0.5) * 1e3,
        "p99_ms": latency.quantile(0.99) * 1e3,
        "latency_buckets": _distribution(latency),
        "first_error": next((p.first_error for p in passes if p.first_error), ""),
    }


def _distribution(histogram: LatencyHistogram) -> list[list[float]]:
    """``[[upper bound, lookups at most that slow], ...]`` in the fine buckets, from the first to the last sample."""
    points: list[list[float]] = []
    for bound, count in histogram.cumulative(BUCKET_BOUNDS):
        if count:
            points.append([bound, count])
            if count == histogram.count:
                break
    return points


def rotated(items: Sequence[Any], round_: int) -> list[Any]:
    """``items`` starting at a different one each round, so drift hits every contender alike."""
    if not items:
        return []
    k = round_ % len(items)
    return [*items[k:], *items[:k]]


def say(*parts: object) -> None:
    print(*parts, flush=True)
