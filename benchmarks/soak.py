"""Soak: 1,000,000 lookups through one ``Resolver``, sampling its footprint every 50,000.

Half the lookups are of 5,000 names asked again and again (cache hits and coalesced
misses), half of names never asked before (every one a miss: a c-ares query to NSD on a
random 127.x address, a wildcard zone). The cache is bounded (20,000 entries, so the
distinct names keep evicting), 1 % of the callers are cancelled at a random moment
(0-5 ms after they asked), and the deadline is 2 s. Every 50,000 lookups it samples the
process's RSS, open file descriptors, asyncio tasks, in-flight entries (the resolver's
coalescer and the c-ares channel's pending queries) and cache entries, and prints them as
a Markdown table; then it checks that they stayed flat (RSS within 10 % of the sample at
20 % of the run, the others back to what they were) and exits non-zero if not.

Only loopback addresses are used; bounded in count (``--lookups``) and time.
Run: ``python benchmarks/soak.py [--lookups N] [--concurrency C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
from dataclasses import dataclass

from asyncresolve.backends.cares import CaresBackend
from asyncresolve.cache import TTLCache
from asyncresolve.errors import ResolveError
from asyncresolve.resolver import Resolver
from asyncresolve.testing.peers import NSD, free_port, random_loopback_address

ORIGIN = "soak.test."
ZONE = """$TTL 300
@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 60
@ 3600 IN NS ns1
ns1 IN A 127.0.0.1
* 300 IN A 192.0.2.1
"""
REPEATED = 5_000


@dataclass
class Sample:
    lookups: int
    seconds: float
    rss_mib: float
    fds: int
    tasks: int
    inflight: int
    cached: int
    errors: int
    cancelled: int


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def soak(args: argparse.Namespace) -> list[Sample]:
    host = random_loopback_address()
    async with NSD({ORIGIN: ZONE}, address=host, port=free_port(host)) as nsd:
        backend = CaresBackend([f"{nsd.address}:{nsd.port}"])
        cache = TTLCache(max_entries=args.cache)
        resolver = Resolver(backends=[backend], cache=cache, timeout=2.0)
        rng = random.Random(args.seed)
        loop = asyncio.get_running_loop()
        samples: list[Sample] = []
        counters = {"errors": 0, "cancelled": 0}
        started = time.perf_counter()
        numbers = iter(range(args.lookups))

        def sample(done: int) -> None:
            gc.collect()
            channel = backend._channel
            inflight = len(resolver._coalescer._inflight) + (len(channel.pending) if channel else 0)
            samples.append(Sample(
                done, time.perf_counter() - started, rss_mib(), open_fds(), len(asyncio.all_tasks()),
                inflight, len(cache), counters["errors"], counters["cancelled"],
            ))
            print(f"  {done:>9,} lookups  {samples[-1].seconds:7.1f} s  RSS {samples[-1].rss_mib:6.1f} MiB  "
                  f"fds {samples[-1].fds:4d}  tasks {samples[-1].tasks:4d}  in flight {inflight:4d}  "
                  f"cached {samples[-1].cached:6d}", flush=True)

        async def one(i: int) -> None:
            name = (f"r{rng.randrange(REPEATED)}.{ORIGIN}" if rng.random() < 0.5 else f"d{i}.{ORIGIN}")
            task = asyncio.ensure_future(resolver.resolve(name, "A"))
            if rng.random() < 0.01:
                loop.call_later(rng.random() * 0.005, task.cancel)
            try:
                await task
            except asyncio.CancelledError:
                counters["cancelled"] += 1
            except ResolveError:
                counters["errors"] += 1

        async def worker() -> None:
            for i in numbers:
                await one(i)

        async def sampler() -> None:
            next_sample = args.every
            while True:
                await asyncio.sleep(0.05)
                done = args.lookups - _remaining(numbers)
                if done >= args.lookups:
                    return
                if done >= next_sample:
                    sample(done)
                    next_sample += args.every

        sample(0)
        workers = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
        watcher = asyncio.create_task(sampler())
        await asyncio.gather(*workers)
        await watcher
        await asyncio.sleep(0.5)  # let cancelled work settle before the last sample
        sample(args.lookups)
        await resolver.aclose()
        return samples


def _remaining(numbers: object) -> int:
    # range_iterator.__length_hint__: how many numbers are still to be handed out
    return int(numbers.__length_hint__())  # type: ignore[attr-defined]


def table(samples: list[Sample]) -> str:
    lines = ["| lookups | seconds | RSS MiB | open fds | tasks | in flight | cached | errors | cancelled |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in samples:
        lines.append(f"| {s.lookups:,} | {s.seconds:.0f} | {s.rss_mib:.1f} | {s.fds} | {s.tasks} | "
                     f"{s.inflight} | {s.cached:,} | {s.errors} | {s.cancelled} |")
    return "\n".join(lines)


def flat(samples: list[Sample]) -> list[str]:
    """What did not stay flat (empty: all flat)."""
    problems = []
    reference = samples[max(1, len(samples) // 5)]
    last = samples[-1]
    if last.rss_mib > reference.rss_mib * 1.10:
        problems.append(f"RSS grew from {reference.rss_mib:.1f} to {last.rss_mib:.1f} MiB")
    if last.fds > samples[0].fds + 2:
        problems.append(f"open fds grew from {samples[0].fds} to {last.fds}")
    if last.tasks > samples[0].tasks + 1:
        problems.append(f"tasks grew from {samples[0].tasks} to {last.tasks}")
    if last.inflight:
        problems.append(f"{last.inflight} entries still in flight at the end")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lookups", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--cache", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"soak: {args.lookups:,} lookups, concurrency {args.concurrency}, cache {args.cache:,} entries, "
          "1 % cancelled", flush=True)
    samples = asyncio.run(soak(args))
    print()
    print(table(samples))
    problems = flat(samples)
    if max(s.cached for s in samples) > args.cache:
        problems.append("the cache went over its bound")
    print()
    print("flat: yes" if not problems else "NOT FLAT: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
