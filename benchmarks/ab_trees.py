"""Before/after of a change: two source trees measured in paired, interleaved rounds.

``python -m benchmarks.ab_trees OLD_TREE NEW_TREE [--rounds 8] [--names 5000] [--concurrency 500]``
starts one NSD (the flat zone of ``servers.py``) and, round after round, runs one sample in
each tree (a child process whose ``sys.path`` starts with that tree), alternating which goes
first. A sample measures, in that tree: cold lookups of distinct names at the given
concurrency through raw pycares, ``Resolver`` + ``CaresBackend``, ``CaresBackend`` alone and
aiodns (three passes each, order rotated; the ratios are paired per pass), sequential cache
hits against the dict floor, and 10,000 concurrent lookups of one uncached name against the
shared-future floor. The medians over the rounds are what to read on a loaded machine.
Make the old tree with ``git worktree add --detach /tmp/old main``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


async def _sample(server: tuple[str, int], count: int, concurrency: int, seed: int) -> dict[str, Any]:
    from asyncresolve.backends.cares import CaresBackend
    from asyncresolve.cache import TTLCache
    from asyncresolve.resolver import Resolver
    from benchmarks.contenders import aiodns_query_dns, cares_backend_alone, raw_pycares, resolver_cares
    from benchmarks.harness import run_pass
    from benchmarks.scenarios import _dict_floor, _shared_future_floor, _timed_hits
    from benchmarks.servers import cold_names, expected_address

    names = cold_names(count)
    order = [("raw", raw_pycares), ("resolver", resolver_cares), ("alone", cares_backend_alone),
             ("aiodns", aiodns_query_dns)]
    order = order[seed % 4:] + order[:seed % 4]
    for _label, opener in order:  # warm-up
        async with opener(server) as lookup:
            await run_pass(names[:300], expected_address, 50, lookup, 10)
    runs: dict[str, list[float]] = {label: [] for label, _ in order}
    for k in range(3):
        for label, opener in order[k:] + order[:k]:
            async with opener(server) as lookup:
                result = await run_pass(names, expected_address, concurrency, lookup, 20)
            if result.success < 0.99:
                raise SystemExit(f"{label}: only {result.success:.1%} right")
            runs[label].append(result.qps)
    out: dict[str, Any] = {label: statistics.median(rates) for label, rates in runs.items()}
    for other in ("raw", "aiodns", "alone"):
        out[f"resolver/{other}"] = statistics.median(a / b for a, b in zip(runs["resolver"], runs[other], strict=True))

    address = f"{server[0]}:{server[1]}"
    name = names[0]
    table = {name: expected_address(name)}
    resolver = Resolver([CaresBackend([address])], cache=TTLCache())
    await resolver.resolve(name, "A")
    hits = []
    for _ in range(4):
        floor = await _timed_hits(200_000, 1, lambda: _dict_floor(table, name))
        rate = await _timed_hits(200_000, 1, lambda: resolver.resolve(name, "A"))
        hits.append(rate / floor)
    out["hits/floor"] = statistics.median(hits)
    await resolver.aclose()

    resolver = Resolver([CaresBackend([address])], cache=TTLCache(), timeout=30.0)
    started = time.perf_counter()
    await resolver.resolve(names[1], "A")
    one = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.gather(*(resolver.resolve(names[2], "A") for _ in range(10_000)))
    total = time.perf_counter() - started
    out["coalesce_upstream"] = resolver.stats.upstream_lookups - 1
    await resolver.aclose()
    floor_s = await _shared_future_floor(10_000)
    out.update(coalesce_ms=total * 1e3, coalesce_ratio=total / (floor_s + one))
    return out


FIGURES = ("resolver/raw", "resolver/aiodns", "resolver/alone", "hits/floor", "coalesce_ms", "coalesce_ratio",
           "coalesce_upstream", "raw")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--names", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--child", nargs=3, metavar=("IP", "PORT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        ip, port, seed = args.child
        print(json.dumps(asyncio.run(_sample((ip, int(port)), args.names, args.concurrency, int(seed)))))
        return

    sys.path.insert(0, str(HERE.parent))
    from asyncresolve.testing.peers import NSD
    from benchmarks.servers import ORIGIN, flat_zone

    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    samples: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    with NSD({ORIGIN: flat_zone(args.names)}, port=None) as nsd:
        for round_ in range(args.rounds):
            for label in (["old", "new"] if round_ % 2 == 0 else ["new", "old"]):
                child = subprocess.run(
                    [sys.executable, str(HERE / "ab_trees.py"), str(args.old), str(args.new), "--names",
                     str(args.names), "--concurrency", str(args.concurrency), "--child", nsd.address, str(nsd.port),
                     str(round_)],
                    cwd=trees[label], capture_output=True, text=True, timeout=600, check=False)
                if child.returncode:
                    print(f"r{round_ + 1} {label}: failed\n{child.stderr[-2000:]}", flush=True)
                    continue
                sample = json.loads(child.stdout.strip().splitlines()[-1])
                samples[label].append(sample)
                print(f"r{round_ + 1} {label}: " + "  ".join(f"{k} {sample[k]:.2f}" for k in FIGURES), flush=True)
    print(f"\nmedians over the rounds ({args.names:,} names, concurrency {args.concurrency}):")
    for label, runs in samples.items():
        if runs:
            print(f"{label} (n={len(runs)}): " + "  ".join(
                f"{k} {statistics.median(r[k] for r in runs):.3f}" for k in FIGURES))


if __name__ == "__main__":
    main()
