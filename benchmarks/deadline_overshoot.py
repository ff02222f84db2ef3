"""How late does a lookup end after its deadline? (c-ares and iterative, against black holes)

For each DNS backend: ``--lookups`` lookups (default 400, 20 at a time) of names in a lab
zone whose every server drops every query (and, second run, whose server drips its TCP
answer one byte a second after a truncated UDP reply), each with a deadline of
``--deadline`` seconds (0.3). Prints the overshoot (time taken minus the deadline)
p50 / p99 / max in milliseconds. Only loopback addresses are used.
Run: ``python benchmarks/deadline_overshoot.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable

from asyncresolve.backends.base import Backend
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.backends.iterative import IterativeBackend
from asyncresolve.errors import ResolveError
from asyncresolve.resolver import Resolver
from asyncresolve.testing import DNSLab, Faults

ORIGIN = "late.test."
ZONE = "\n".join(f"n{i} 300 IN A 192.0.2.{i % 250}" for i in range(5000)) + "\n"

SCENARIOS: dict[str, Callable[[Faults], None]] = {
    "black hole": lambda f: setattr(f, "drop_rate", 1.0),
    "TCP drip": lambda f: (setattr(f, "truncate", True), setattr(f, "tcp_drip", 1.0)),
}


async def measure(kind: str, scenario: str, args: argparse.Namespace) -> list[float]:
    async with DNSLab({ORIGIN: ZONE}, servers_per_zone={ORIGIN: 2}) as lab:
        servers = lab.servers_for(ORIGIN)
        backend: Backend
        if kind == "cares":
            backend = CaresBackend([s.address for s in servers])
        else:
            backend = IterativeBackend(root_hints=lab.root_hints, port=lab.port)
        resolver = Resolver(backends=[backend], cache=None)
        if kind == "iterative":
            await resolver.resolve(f"n4999.{ORIGIN}", "A", timeout=5)  # the delegation, before the faults
        for server in servers:
            SCENARIOS[scenario](server.faults)
        sem = asyncio.Semaphore(args.concurrency)
        late: list[float] = []

        async def one(i: int) -> None:
            async with sem:
                started = time.perf_counter()
                with contextlib.suppress(ResolveError):
                    await resolver.resolve(f"n{i}.{ORIGIN}", "A", timeout=args.deadline)
                late.append(time.perf_counter() - started - args.deadline)

        try:
            await asyncio.gather(*(one(i) for i in range(args.lookups)))
        finally:
            await resolver.aclose()
        return late


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lookups", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--deadline", type=float, default=0.3)
    args = parser.parse_args()
    print(f"deadline {args.deadline * 1000:.0f} ms, {args.lookups} lookups, {args.concurrency} at a time")
    print("| backend | fault | p50 | p99 | max |")
    print("| --- | --- | ---: | ---: | ---: |")
    for kind in ("cares", "iterative"):
        for scenario in SCENARIOS:
            late = sorted(asyncio.run(measure(kind, scenario, args)))
            p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
            print(f"| {kind} | {scenario} | {statistics.median(late) * 1000:.1f} ms | {p99 * 1000:.1f} ms | "
                  f"{late[-1] * 1000:.1f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
