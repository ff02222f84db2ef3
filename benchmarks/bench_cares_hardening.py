"""What c-ares's forgery resistance costs: 0x20 and a fresh source port per N queries.

Cold lookups of N distinct names (default 10,000) at concurrency C (default 200) against a
flat NSD on a random 127.x address, with ``CaresBackend`` in these settings, interleaved
over rounds so drift hits each alike:

* ``plain``       - ``dns0x20=False, udp_max_queries=0`` (c-ares's own defaults: the baseline)
* ``0x20``        - ``dns0x20=True,  udp_max_queries=0``
* ``0x20+port/8`` - ``dns0x20=True,  udp_max_queries=8``
* ``0x20+port/1`` - ``dns0x20=True,  udp_max_queries=1`` (a new port for every query)
* ``default``     - the backend's defaults (``dns0x20=True, udp_max_queries=4``)

and prints queries per second and the ratio to ``plain``. Then it counts the distinct
source ports a lab server sees over 10,000 queries, for c-ares (each setting) and for
the iterative backend. Only loopback addresses are used.
Run: ``python benchmarks/bench_cares_hardening.py [--names N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from typing import Any

from asyncresolve.backends.base import Backend, Query
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.backends.iterative import IterativeBackend
from asyncresolve.testing import DNSLab
from asyncresolve.testing.peers import NSD, free_port, random_loopback_address

ORIGIN = "harden.test."
SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {"dns0x20": False, "udp_max_queries": 0},
    "0x20": {"dns0x20": True, "udp_max_queries": 0},
    "0x20+port/8": {"dns0x20": True, "udp_max_queries": 8},
    "0x20+port/1": {"dns0x20": True, "udp_max_queries": 1},
    "default": {},
}
EXTRA: dict[str, dict[str, Any]] = {
    "default,no-rcvbuf": {"receive_buffer": None},
    "default,thread": {"loop_mode": "thread"},
}


def zone_text(count: int) -> str:
    lines = ["$TTL 300", "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 60", "@ 3600 IN NS ns1",
             "ns1 IN A 127.0.0.1"]
    lines += [f"h{i} IN A 198.18.{(i >> 8) & 255}.{i & 255}" for i in range(count)]
    return "\n".join(lines) + "\n"


async def run(backend: Backend, count: int, concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    numbers = iter(range(count))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for i in numbers:
            try:
                await backend.resolve(Query(f"h{i}.{ORIGIN}", "A", loop.time() + 10))
            except Exception:  # noqa: BLE001 - counted: the hardening figure is how many fail
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if failures:
        print(f"    ({failures} failures)")
    return count / elapsed


async def throughput(args: argparse.Namespace) -> None:
    host = random_loopback_address()
    async with NSD({ORIGIN: zone_text(args.names)}, address=host, port=free_port(host)) as nsd:
        server = f"{nsd.address}:{nsd.port}"
        print(f"== throughput: {args.names} distinct names, concurrency {args.concurrency}, NSD at {server}")
        samples: dict[str, list[float]] = {name: [] for name in SETTINGS}
        for _ in range(args.rounds):
            for name, options in SETTINGS.items():
                backend = CaresBackend([server], **options)
                try:
                    samples[name].append(await run(backend, args.names, args.concurrency))
                finally:
                    await backend.aclose()
        base = statistics.median(samples["plain"])
        for name, values in samples.items():
            med = statistics.median(values)
            print(f"  {name:12s} {med:8.0f} qps (median of {args.rounds}; best {max(values):.0f})"
                  f"  ratio to plain {med / base:.3f}")


async def ports(args: argparse.Namespace) -> None:
    count = args.port_queries
    async with DNSLab({ORIGIN: zone_text(2000)}) as lab:
        server = lab.server_for(ORIGIN)
        seen: set[int] = set()
        server.on_udp_query = lambda wire, addr: seen.add(addr[1])
        print(f"== distinct source ports over {count} queries (lab server's view)")
        variants: dict[str, Any] = {f"cares {n}": (lambda o=o: CaresBackend([server.address], **o))
                                    for n, o in SETTINGS.items()}
        variants["iterative"] = lambda: IterativeBackend(root_hints=lab.root_hints, port=lab.port)
        for name, make in variants.items():
            seen.clear()
            backend = make()
            try:
                await spread(backend, count)
            finally:
                await backend.aclose()
            print(f"  {name:20s} {len(seen):6d} distinct ports")


async def spread(backend: Backend, count: int) -> None:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(50)

    async def one(i: int) -> None:
        async with sem:
            with contextlib.suppress(Exception):
                await backend.resolve(Query(f"h{i % 2000}.{ORIGIN}", "A", loop.time() + 10))

    await asyncio.gather(*(one(i) for i in range(count)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port-queries", type=int, default=10_000)
    parser.add_argument("--extra", action="store_true", help="also other variants (rcvbuf, thread)")
    parser.add_argument("--no-ports", action="store_true")
    args = parser.parse_args()
    if args.extra:
        SETTINGS.update(EXTRA)
    asyncio.run(throughput(args))
    if not args.no_ports:
        asyncio.run(ports(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
