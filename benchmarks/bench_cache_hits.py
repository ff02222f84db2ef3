"""Cache-hit throughput of ``await resolver.resolve()``: sequential, one process.

Reference points measured in the same run: a bare dict lookup behind an ``await``
(the floor any async cache pays) and ``loop.getaddrinfo`` of the same name (what code
without a resolver cache pays). Run: ``python benchmarks/bench_cache_hits.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from asyncresolve import Resolver
from asyncresolve.backends import HostsBackend


async def dict_behind_await(table: dict[str, str], key: str) -> str:
    return table[key]


async def measure(label: str, n: int, call) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in range(n):
        await call()
    elapsed = time.perf_counter() - started
    rate = n / elapsed
    print(f"{label:<42} {rate:>12,.0f} /s   ({n:,} in {elapsed:.2f} s)")
    return rate


async def main(n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hosts = Path(tmp, "hosts")
        hosts.write_text("192.0.2.1 bench.example\n")
        async with Resolver([HostsBackend(hosts, ttl=3600)]) as resolver:
            await resolver.resolve("bench.example", "A")  # fill the cache
            table = {"bench.example.": "192.0.2.1"}
            best_hit = best_dict = 0.0
            for _ in range(repeat):
                best_hit = max(best_hit, await measure(
                    "resolver.resolve() cache hit", n, lambda: resolver.resolve("bench.example", "A")))
                best_dict = max(best_dict, await measure(
                    "dict lookup behind await (floor)", n, lambda: dict_behind_await(table, "bench.example.")))
            loop = asyncio.get_running_loop()
            gai = await measure("loop.getaddrinfo('localhost') (threads)", min(n, 5_000),
                                lambda: loop.getaddrinfo("localhost", 80))
            assert resolver.stats.upstream_lookups == 1, resolver.stats
    print()
    print(f"cache hits: {best_hit:,.0f}/s = {best_hit / best_dict:.2f} x the bare-dict floor, "
          f"{best_hit / gai:.0f} x loop.getaddrinfo")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500_000, help="lookups per measurement")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.repeat))
