"""The scenarios: each an async function of the run's ``Context`` returning plain data for the JSON.

(1) ``cold``: distinct names, every contender, several concurrencies, rounds interleaved.
(2) ``cache_hits``: hits sequential and at concurrency 1,000 against the bare-dict floor.
(3) ``coalescing``: 10,000 concurrent lookups of one uncached name, queries counted at the server.
(4) ``iterative``: from the root against a cold unbound (``iterative_scenario``, sync: it owns servers).
(5) ``bulk``: ``Resolver.resolve_many`` when it exists.
(6) ``memory``: bytes per cached entry, peak of a bulk-sized run.
(7) the miss-path split is in (1): raw pycares, each backend alone (``CaresBackend``, ``NativeBackend``)
    and the full ``Resolver`` over it, with the client's CPU time per name.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import dns.resolver

from asyncresolve.backends.cares import CaresBackend
from asyncresolve.cache import TTLCache
from asyncresolve.resolver import Resolver

from .contenders import BASELINE, Contender
from .harness import rotated, run_pass, say, summarise
from .servers import cold_names, dnsperf, dnsperf_available, expected_address


@dataclass
class Context:
    server: tuple[str, int]
    loop_name: str
    rounds: int
    names: int
    levels: list[int]
    pass_limit: float
    contenders: tuple[Contender, ...]
    hits: int
    coalesce: int
    bulk_names: int
    memory_names: int
    results: dict[str, Any] = field(default_factory=dict)


# -- (1) and (7): cold lookups ---------------------------------------------------------------
async def cold(ctx: Context) -> dict[str, Any]:
    names = cold_names(ctx.names)
    say(f"\n[{ctx.loop_name}] (1) cold lookups: {len(names):,} distinct names, concurrency {ctx.levels}, "
        f"{ctx.rounds} rounds, {ctx.pass_limit:.0f} s cap per pass")
    for contender in ctx.contenders:  # warm-up: code paths, sockets, the server
        async with contender.open(ctx.server) as lookup:
            await run_pass(names[:500], expected_address, 50, lookup, ctx.pass_limit)
    samples: dict[str, dict[int, list[Any]]] = {c.label: {lv: [] for lv in ctx.levels} for c in ctx.contenders}
    ceiling: dict[int, list[dict[str, float]]] = {lv: [] for lv in ctx.levels}
    for round_ in range(ctx.rounds):
        for level in ctx.levels:
            for contender in rotated(ctx.contenders, round_):
                async with contender.open(ctx.server) as lookup:
                    result = await run_pass(names, expected_address, level, lookup, ctx.pass_limit)
                samples[contender.label][level].append(result)
                cut = f", cut {result.cut:,}" if result.cut else ""
                say(f"  r{round_ + 1} c={level:<5} {contender.label:<24} {result.qps:9,.0f} qps  "
                    f"ok {result.success:6.1%}{cut}" + (f"  [{result.first_error}]" if result.first_error else ""))
            if dnsperf_available() and ctx.loop_name == "asyncio":
                perf = dnsperf(ctx.server, names, level, ctx.pass_limit)
                ceiling[level].append(perf)
                say(f"  r{round_ + 1} c={level:<5} {'dnsperf (C ceiling)':<24} {perf['qps']:9,.0f} qps  "
                    f"ok {perf['success']:6.1%}")
    out: dict[str, Any] = {"names": len(names), "levels": ctx.levels, "contenders": {}, "notes": {}}
    for contender in ctx.contenders:
        out["contenders"][contender.label] = {str(lv): summarise(samples[contender.label][lv]) for lv in ctx.levels}
        if contender.note:
            out["notes"][contender.label] = contender.note
    if any(ceiling.values()):
        out["dnsperf"] = {str(lv): {
            "qps_median": statistics.median(p["qps"] for p in runs),
            "qps_min": min(p["qps"] for p in runs),
            "qps_max": max(p["qps"] for p in runs),
            "success": statistics.median(p["success"] for p in runs),
        } for lv, runs in ceiling.items() if runs}
    return out


# -- (2) cache hits ----------------------------------------------------------------------------
async def _dict_floor(table: dict[str, str], key: str) -> str:
    return table[key]


async def _timed_hits(n: int, concurrency: int, call: Any) -> float:
    """Hits per second of ``await call()``: ``n`` in one task, or spread over ``concurrency`` tasks."""
    async def loop_of(count: int) -> None:
        for _ in range(count):
            await call()

    started = time.perf_counter()
    if concurrency <= 1:
        await loop_of(n)
    else:
        await asyncio.gather(*(loop_of(n // concurrency) for _ in range(concurrency)))
        n = n // concurrency * concurrency
    return n / (time.perf_counter() - started)


async def cache_hits(ctx: Context) -> dict[str, Any]:
    say(f"\n[{ctx.loop_name}] (2) cache hits: {ctx.hits:,} per pass, sequential and at concurrency 1,000")
    server = f"{ctx.server[0]}:{ctx.server[1]}"
    name = cold_names(1)[0]
    table = {name: expected_address(name)}
    resolver = Resolver([CaresBackend([server])], cache=TTLCache())
    stub = dns.asyncresolver.Resolver(configure=False)
    stub.nameservers = [ctx.server[0]]
    stub.port = ctx.server[1]
    stub.cache = dns.resolver.Cache()
    try:
        await resolver.resolve(name, "A")
        await stub.resolve(name, "A")
        calls = {
            "dict behind await (floor)": lambda: _dict_floor(table, name),
            "Resolver cache hit": lambda: resolver.resolve(name, "A"),
            "dnspython cache hit": lambda: stub.resolve(name, "A"),
        }
        samples: dict[str, dict[str, list[float]]] = {label: {"1": [], "1000": []} for label in calls}
        for round_ in range(ctx.rounds):
            for label in rotated(list(calls), round_):
                n = ctx.hits if "dnspython" not in label else ctx.hits // 10  # it is ~20x slower
                for concurrency in (1, 1000):
                    rate = await _timed_hits(n, concurrency, calls[label])
                    samples[label][str(concurrency)].append(rate)
            say(f"  r{round_ + 1} " + "  ".join(
                f"{label}: {samples[label]['1'][-1]:,.0f}/s" for label in calls))
        assert resolver.stats.upstream_lookups == 1, resolver.stats
    finally:
        await resolver.aclose()
    out: dict[str, Any] = {"hits_per_pass": ctx.hits, "contenders": {}}
    for label, by_conc in samples.items():
        out["contenders"][label] = {c: {"rate_median": statistics.median(v), "rate_min": min(v),
                                        "rate_max": max(v)} for c, v in by_conc.items()}
    floor = out["contenders"]["dict behind await (floor)"]
    for by_conc in out["contenders"].values():
        for c, figures in by_conc.items():
            figures["vs_floor"] = figures["rate_median"] / floor[c]["rate_median"]
    return out


# -- (3) coalescing ----------------------------------------------------------------------------
async def _shared_future_floor(waiters: int) -> float:
    """``waiters`` tasks awaiting one shared future that is still pending, then settled: the
    least ``waiters`` coalesced callers can cost. Each waiter has suspended on the future
    before it gets its result, as a coalesced caller has (it waits for an upstream answer)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    async def wait() -> str:
        return await future

    started = time.perf_counter()
    waiting = asyncio.gather(*(wait() for _ in range(waiters)))
    await asyncio.sleep(0)  # one loop iteration: every waiter's first step, which suspends on the future
    future.set_result("192.0.2.1")
    await waiting
    return time.perf_counter() - started


async def _done_future_floor(waiters: int) -> float:
    """The floor until 2026-11-26 (run i): the future is settled before the waiters' first
    step, so none of them suspends. Kept for comparison with the runs before; it understates
    what waiting costs (39-62 ms against 95-145 for 10,000 waiters in runs j and k)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    async def wait() -> str:
        return await future

    started = time.perf_counter()
    loop.call_soon(future.set_result, "192.0.2.1")
    await asyncio.gather(*(wait() for _ in range(waiters)))
    return time.perf_counter() - started


async def coalescing(ctx: Context) -> dict[str, Any]:
    from asyncresolve.testing import DNSLab

    say(f"\n[{ctx.loop_name}] (3) coalescing: {ctx.coalesce:,} concurrent lookups of one uncached name")
    zone = "\n".join(f"w{i} 300 IN A 192.0.2.{i + 1}" for i in range(2 * ctx.rounds + 2)) + "\n"
    rounds = []
    async with DNSLab({"coalesce.test.": zone}, record_queries=False) as lab:
        ip, port = lab.stub_server
        for round_ in range(ctx.rounds):
            resolver = Resolver([CaresBackend([f"{ip}:{port}"])], cache=TTLCache(), timeout=30.0)
            try:
                started = time.perf_counter()
                await resolver.resolve(f"w{2 * round_}.coalesce.test", "A")
                one = time.perf_counter() - started
                lab.reset_counters()
                name = f"w{2 * round_ + 1}.coalesce.test"
                # Both timed parts start from a collected heap: otherwise whichever runs right
                # after a scenario that left garbage pays for collecting it. (Until 2026-11-26
                # they did not, and the floor, measured second, sometimes took 110-130 ms
                # instead of 50: its collections inherited the lookups' garbage.)
                gc.collect()
                started = time.perf_counter()
                answers = await asyncio.gather(*(resolver.resolve(name, "A") for _ in range(ctx.coalesce)))
                total = time.perf_counter() - started
                queries = lab.query_count
                ok = sum(1 for a in answers if a.records[0].address == f"192.0.2.{2 * round_ + 2}")
            finally:
                await resolver.aclose()
            gc.collect()
            floor = await _shared_future_floor(ctx.coalesce)
            gc.collect()
            done_floor = await _done_future_floor(ctx.coalesce)
            rounds.append({"one_lookup_s": one, "total_s": total, "floor_s": floor, "done_floor_s": done_floor,
                           "upstream_queries": queries, "ok": ok, "coalesced": resolver.stats.coalesced,
                           "bound_s": 2 * floor + one, "within_bound": total <= 2 * floor + one})
            say(f"  r{round_ + 1} {ctx.coalesce:,} lookups: {total * 1e3:.1f} ms, {queries} upstream quer"
                f"{'y' if queries == 1 else 'ies'}, {ok:,} right; floor {floor * 1e3:.1f} ms (done-future floor "
                f"{done_floor * 1e3:.1f} ms), one lookup {one * 1e3:.1f} ms -> bound {(2 * floor + one) * 1e3:.1f} ms")
    med = {key: statistics.median(r[key] for r in rounds)
           for key in ("one_lookup_s", "total_s", "floor_s", "done_floor_s")}
    return {"waiters": ctx.coalesce, "rounds": rounds, **{f"{k}_median": v for k, v in med.items()},
            "upstream_queries_max": max(r["upstream_queries"] for r in rounds),
            "ratio_to_floor_plus_one": med["total_s"] / (med["floor_s"] + med["one_lookup_s"]),
            "ratio_to_done_floor_plus_one": med["total_s"] / (med["done_floor_s"] + med["one_lookup_s"])}


# -- (5) bulk ------------------------------------------------------------------------------------
def resolve_many_available() -> bool:
    return hasattr(Resolver, "resolve_many")


async def _drain_resolve_many(resolver: Resolver, names: list[str]) -> tuple[int, int]:
    """Run ``resolver.resolve_many`` over ``names``; (results, results without an error)."""
    produced = resolver.resolve_many(names, "A")  # type: ignore[attr-defined]
    if inspect.isawaitable(produced):
        produced = await produced
    results = ok = 0
    if hasattr(produced, "__aiter__"):
        async for item in produced:
            results += 1
            ok += getattr(item, "error", None) is None
    else:
        for item in produced:
            results += 1
            ok += getattr(item, "error", None) is None
    return results, ok


def _high_water_kb(pid: int) -> int:
    """VmHWM of a running process in kB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def bulk_cli_available() -> bool:
    return importlib.util.find_spec("asyncresolve.bulk") is not None


def run_bulk_cli(server: tuple[str, int], names: list[str], concurrency: int = 500) -> dict[str, Any]:
    """``python -m asyncresolve bulk`` over ``names`` (a file), as a user runs it: time, results, peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        source = os.path.join(tmp, "names.txt")
        output = os.path.join(tmp, "out.jsonl")
        with open(source, "w") as handle:
            handle.write("".join(f"{name}\n" for name in names))
        argv = [sys.executable, "-m", "asyncresolve", "bulk", source, "--nameserver", f"{server[0]}:{server[1]}",
                "-c", str(concurrency), "-o", output, "--format", "jsonl", "--no-progress"]
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # The peak RSS is read from /proc (VmHWM) while the command runs: wait4's ru_maxrss is no
        # use here, as Linux folds into it the high-water mark of the memory the child had at
        # fork, i.e. this whole benchmark process's.
        peak_kb = 0
        try:
            while process.poll() is None:
                peak_kb = max(peak_kb, _high_water_kb(process.pid))
                time.sleep(0.05)
        except BaseException:
            process.kill()
            raise
        elapsed = time.perf_counter() - started
        stderr = process.stderr.read() if process.stderr else ""
        results = ok = 0
        if os.path.exists(output):
            with open(output) as handle:
                for line in handle:
                    results += 1
                    ok += '"NOERROR"' in line
    return {"names": len(names), "exit": process.returncode, "elapsed_s": elapsed, "qps": results / elapsed,
            "results": results, "success": ok / len(names) if names else 0.0,
            "peak_rss_mib": peak_kb / 1024, "stderr": stderr[-300:]}


async def bulk(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = cold_names(ctx.bulk_names)
    if bulk_cli_available():
        say(f"\n[{ctx.loop_name}] (5) bulk CLI: python -m asyncresolve bulk over {len(names):,} names")
        cli = run_bulk_cli(ctx.server, names)
        say(f"  exit {cli['exit']}: {cli['results']:,} results in {cli['elapsed_s']:.1f} s = {cli['qps']:,.0f}/s, "
            f"NOERROR {cli['success']:.1%}, peak RSS {cli['peak_rss_mib']:.0f} MiB")
        out["cli"] = cli
    else:
        out["cli"] = {"skipped": "no bulk CLI (asyncresolve.bulk) in this tree yet"}
        say(f"\n[{ctx.loop_name}] (5) bulk CLI: {out['cli']['skipped']}: skipped")
    if not resolve_many_available():
        note = "Resolver.resolve_many does not exist in this tree yet: scenario (5) skipped"
        say(f"[{ctx.loop_name}] (5) bulk: {note}")
        return {**out, "skipped": note}
    say(f"[{ctx.loop_name}] (5) bulk: resolve_many over {len(names):,} names")
    rates = []
    successes = []
    for _ in range(ctx.rounds):
        resolver = Resolver([CaresBackend([f"{ctx.server[0]}:{ctx.server[1]}"])], cache=TTLCache())
        try:
            started = time.perf_counter()
            results, ok = await _drain_resolve_many(resolver, names)
            elapsed = time.perf_counter() - started
        finally:
            await resolver.aclose()
        rates.append(results / elapsed)
        successes.append(ok / len(names))
        say(f"  resolve_many: {results:,} results in {elapsed:.2f} s = {rates[-1]:,.0f}/s, ok {successes[-1]:.1%}")
    return {**out, "names": len(names), "qps_median": statistics.median(rates), "qps_min": min(rates),
            "qps_max": max(rates), "success": min(successes)}


# -- (6) memory ------------------------------------------------------------------------------------
async def memory(ctx: Context) -> dict[str, Any]:
    names = cold_names(ctx.memory_names)
    say(f"\n[{ctx.loop_name}] (6) memory: {len(names):,} names cached through Resolver+cares (tracemalloc)")
    resolver = Resolver([CaresBackend([f"{ctx.server[0]}:{ctx.server[1]}"])], cache=TTLCache())

    async def one(name: str) -> str | None:
        return (await resolver.resolve(name, "A")).records[0].address  # type: ignore[attr-defined,no-any-return]

    tracemalloc.start()
    try:
        await one(names[0])  # the channel and its buffers exist before the count starts
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = await run_pass(names, expected_address, 500, one, 120.0)
        after, peak = tracemalloc.get_traced_memory()
        assert resolver.cache is not None
        entries = len(resolver.cache)
        resolver.cache.clear()
        cleared, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await resolver.aclose()
    per_entry = (after - cleared) / max(1, entries)
    say(f"  {entries:,} entries: {per_entry:,.0f} bytes per cached answer; peak of the run "
        f"{(peak - before) / 2**20:.1f} MiB above the start, ok {result.success:.1%}")
    out: dict[str, Any] = {"entries": entries, "bytes_per_entry": per_entry,
                           "peak_mib_cold_run": (peak - before) / 2**20, "names": len(names)}
    if resolve_many_available():
        resolver = Resolver([CaresBackend([f"{ctx.server[0]}:{ctx.server[1]}"])], cache=TTLCache())
        tracemalloc.start()
        try:
            start, _ = tracemalloc.get_traced_memory()
            await _drain_resolve_many(resolver, cold_names(ctx.bulk_names))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await resolver.aclose()
        out["peak_mib_bulk"] = (peak - start) / 2**20
        say(f"  resolve_many over {ctx.bulk_names:,} names: peak {out['peak_mib_bulk']:.1f} MiB")
    return out


ASYNC_SCENARIOS = {"cold": cold, "cache": cache_hits, "coalesce": coalescing, "bulk": bulk, "memory": memory}


# -- (4) iterative: its own NSD hierarchy and unbound ------------------------------------------------
def iterative_scenario(loops: list[tuple[str, Any]], rounds: int, names_count: int,
                       concurrency: int, limit: float) -> dict[str, Any]:
    """Cold resolution from the root: ``IterativeBackend`` against a cold unbound, same NSD hierarchy.

    Uses bench_iterative's hierarchy and pass functions, so the standalone script and this
    scenario measure the same thing.
    """
    import random

    from asyncresolve.testing.peers import Unbound, port_is_free, random_loopback_block

    from . import bench_iterative as it

    for _ in range(32):
        block = random_loopback_block()
        if all(port_is_free(f"{block}{i}", 53) for i in (*range(1, 8), 53)):
            break
    h = it.build_hierarchy(block, names=names_count, zones=50, tlds=5, per_level=1)
    names = sorted(h.expected)
    random.Random(1).shuffle(names)
    say(f"\n(4) iterative: {len(names):,} names under 50 zones from an NSD root, concurrency {concurrency}, "
        f"{rounds} rounds; unbound restarted (cold) before each of its passes")
    out: dict[str, Any] = {"names": len(names), "concurrency": concurrency, "loops": {}}
    with it.nsd_hierarchy(h) as root_hints, Unbound(root_hints=root_hints, address=f"{block}53") as unbound:
        for loop_name, factory in loops:
            async def one_loop(loop_name: str = loop_name) -> dict[str, list[Any]]:
                passes: dict[str, list[Any]] = {}

                def keep(result: Any) -> None:
                    passes.setdefault(result.label, []).append(result)
                    say(f"  [{loop_name}] {result.label:<24} {result.qps:9,.0f} qps  failures {result.failures}")

                for _ in range(rounds):
                    keep(await it.bench_iterative(root_hints, names, h.expected, concurrency, limit))
                    await unbound.restart()
                    keep(await it.bench_pycares("pycares->unbound", unbound.address, names, h.expected,
                                                concurrency, limit))
                    await unbound.restart()
                    keep(await it.bench_dnspython(unbound.address, names, h.expected, concurrency, limit))
                return passes

            with asyncio.Runner(loop_factory=factory) as runner:
                passes = runner.run(one_loop())
            out["loops"][loop_name] = {label: {
                "qps_median": statistics.median(p.qps for p in runs),
                "qps_min": min(p.qps for p in runs),
                "qps_max": max(p.qps for p in runs),
                "success": sum(p.ok for p in runs) / max(1, sum(p.ok + p.failures for p in runs)),
            } for label, runs in passes.items()}
    return out


__all__ = ["ASYNC_SCENARIOS", "BASELINE", "Context", "iterative_scenario"]
