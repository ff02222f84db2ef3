"""Native stub throughput: the full ``Resolver`` + ``NativeBackend`` against raw pycares, same NSD, same run.

Cold lookups of N distinct names (default 20,000) at concurrency C (default 500) against a
flat NSD on a random 127.x address (NSD answers ~100k qps here: the clients are what is
measured), in rounds, interleaved:

* ``pycares``          - raw ``pycares.Channel.query`` with c-ares's sockets watched by the
                         loop (its faster integration, see ``bench_cares.py``): the baseline;
* ``native resolver``  - ``Resolver(backends=[NativeBackend(...)])`` with its cache: the target,
                         >= 1.5 x pycares;
* ``native backend``   - ``NativeBackend.resolve`` alone (the resolver layer's cost on a miss is
                         the difference);
* ``cares resolver``   - ``Resolver(backends=[CaresBackend(...)])``, for comparison;
* ``cares backend``    - ``CaresBackend.resolve`` alone.

Each pass also reports the client's CPU time per name (``time.process_time``, this
process only: the server's work is not in it), which the machine's load disturbs less
than wall-clock rates. Every answer is checked. ``--uvloop`` repeats everything on uvloop. Only loopback is used.
Run: ``python benchmarks/bench_native.py [--uvloop] [--names N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cares import ORIGIN, RawPycares, run_workers, zone_text

from asyncresolve.backends.base import Query
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.backends.native import NativeBackend
from asyncresolve.cache import TTLCache
from asyncresolve.resolver import Resolver
from asyncresolve.testing.peers import NSD, free_port, random_loopback_address

TARGET = 1.5


async def bench_pycares(server: str, count: int, concurrency: int, prefix: str) -> float:
    raw = RawPycares(server, "sockets")
    try:
        async def one(i: int) -> str:
            result = await raw.query(f"h{i}.{prefix}{ORIGIN}")
            return result.answer[0].data.addr  # type: ignore[no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        raw.close()


async def bench_native_resolver(server: str, count: int, concurrency: int, prefix: str) -> float:
    resolver = Resolver(backends=[NativeBackend([server])], cache=TTLCache(), timeout=10.0)
    try:
        async def one(i: int) -> str:
            answer = await resolver.resolve(f"h{i}.{prefix}{ORIGIN}", "A")
            return answer.records[0].address  # type: ignore[attr-defined,no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        await resolver.aclose()


async def bench_native_backend(server: str, count: int, concurrency: int, prefix: str) -> float:
    backend = NativeBackend([server])
    loop = asyncio.get_running_loop()
    try:
        async def one(i: int) -> str:
            answer = await backend.resolve(Query(f"h{i}.{prefix}{ORIGIN}", "A", loop.time() + 10.0))
            return answer.records[0].address  # type: ignore[attr-defined,no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        await backend.aclose()


async def bench_cares_resolver(server: str, count: int, concurrency: int, prefix: str) -> float:
    resolver = Resolver(backends=[CaresBackend([server])], cache=TTLCache(), timeout=10.0)
    try:
        async def one(i: int) -> str:
            answer = await resolver.resolve(f"h{i}.{prefix}{ORIGIN}", "A")
            return answer.records[0].address  # type: ignore[attr-defined,no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        await resolver.aclose()


async def bench_cares_backend(server: str, count: int, concurrency: int, prefix: str) -> float:
    backend = CaresBackend([server])
    loop = asyncio.get_running_loop()
    try:
        async def one(i: int) -> str:
            answer = await backend.resolve(Query(f"h{i}.{prefix}{ORIGIN}", "A", loop.time() + 10.0))
            return answer.records[0].address  # type: ignore[attr-defined,no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        await backend.aclose()


BENCHES = {
    "pycares": bench_pycares,
    "native resolver": bench_native_resolver,
    "native backend": bench_native_backend,
    "cares resolver": bench_cares_resolver,
    "cares backend": bench_cares_backend,
}


async def main_async(args: argparse.Namespace, label: str) -> bool:
    host = random_loopback_address()
    async with NSD({ORIGIN: zone_text(args.names)}, address=host, port=free_port(host)) as nsd:
        server = f"{nsd.address}:{nsd.port}"
        print(f"\n== {label}: {args.names} distinct names, concurrency {args.concurrency}, NSD at {server}",
              flush=True)
        for bench in BENCHES.values():  # warm-up: sockets, code paths, NSD
            await bench(server, min(2000, args.names), args.concurrency, "")
        samples: dict[str, list[float]] = {name: [] for name in BENCHES}
        cpu: dict[str, list[float]] = {name: [] for name in BENCHES}
        for _ in range(args.rounds):
            for name, bench in BENCHES.items():  # interleaved: drift hits every variant alike
                started = time.process_time()
                samples[name].append(await bench(server, args.names, args.concurrency, ""))
                cpu[name].append((time.process_time() - started) / args.names * 1e6)
        best = {name: max(values) for name, values in samples.items()}
        least = {name: min(values) for name, values in cpu.items()}
        for name, values in samples.items():
            print(f"  {name:<16} {best[name]:8.0f} qps (median {statistics.median(values):.0f}, "
                  f"{best[name] / best['pycares']:.2f} x pycares)  client CPU {least[name]:6.1f} us/name")
        ratio = best["native resolver"] / best["pycares"]
        layer = least["native resolver"] - least["native backend"]
        cares_layer = least["cares resolver"] - least["cares backend"]
        print(f"  native resolver / pycares = {ratio:.2f} (target >= {TARGET})  "
              f"{'OK' if ratio >= TARGET else 'BELOW TARGET'}")
        print(f"  resolver layer on a miss: {layer:.1f} us of client CPU per name with the native backend "
              f"(alone {least['native backend']:.1f} us, full Resolver {least['native resolver']:.1f} us), "
              f"{cares_layer:.1f} us with c-ares (alone {least['cares backend']:.1f} us, full Resolver "
              f"{least['cares resolver']:.1f} us)", flush=True)
        return ratio >= TARGET


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--names", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uvloop", action="store_true", help="also run everything on uvloop")
    args = parser.parse_args()
    ok = asyncio.run(main_async(args, "asyncio"))
    if args.uvloop:
        import uvloop

        ok &= uvloop.run(main_async(args, "uvloop"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
