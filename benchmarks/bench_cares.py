"""c-ares backend throughput: the full ``Resolver`` path against raw pycares, same server, same run.

Cold lookups of N distinct names (default 20,000) at concurrency C (default 500) against a
flat NSD serving one zone on a random 127.x address (NSD answers ~100k qps here, so the
client is what is measured). For each loop integration of pycares 5 ("sockets": c-ares's
sockets watched by the asyncio loop; "thread": c-ares's own event thread) it measures:

* ``raw``      - ``pycares.Channel.query`` driven the way aiodns drives it (the baseline);
* ``resolver`` - ``Resolver(backends=[CaresBackend(...)], cache=TTLCache())``: chain, cache,
                 coalescing, conversion to ``Answer``;
* ``backend``  - ``CaresBackend.resolve`` alone (for the split of the overhead);
* ``aiodns``   - ``aiodns.DNSResolver.query_dns`` (information only).

and prints queries per second and the ratio resolver/raw, which must be >= 0.85. Every
result is checked (right address for the name). ``--uvloop`` repeats everything on uvloop.
Only loopback addresses are used. Run: ``python benchmarks/bench_cares.py [--names N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

import pycares

from asyncresolve.backends.base import Query
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.cache import TTLCache
from asyncresolve.resolver import Resolver
from asyncresolve.testing.peers import NSD, free_port, random_loopback_address

ORIGIN = "bench.test."
TARGET_RATIO = 0.85
# Same SO_RCVBUF as CaresBackend's default everywhere: with the kernel's 208 KiB, replies to
# 500 queries in flight overflow the one UDP socket and the run measures c-ares's retry timer.
RCVBUF = 1 << 20


def zone_text(count: int) -> str:
    lines = [
        "$TTL 300",
        "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 60",
        "@ 3600 IN NS ns1",
        "ns1 IN A 127.0.0.1",
    ]
    lines += [f"h{i} IN A {address_of(i)}" for i in range(count)]
    return "\n".join(lines) + "\n"


def address_of(i: int) -> str:
    return f"198.{18 + ((i >> 16) & 1)}.{(i >> 8) & 255}.{i & 255}"  # RFC 2544's benchmarking range, as data


async def run_workers(count: int, concurrency: int, one: Callable[[int], Awaitable[str]]) -> float:
    """Look up names 0..count-1 with ``concurrency`` workers; return queries per second."""
    numbers: Iterator[int] = iter(range(count))
    wrong: list[int] = []

    async def worker() -> None:
        for i in numbers:
            if await one(i) != address_of(i):
                wrong.append(i)

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    if wrong:
        raise AssertionError(f"{len(wrong)} wrong answers, e.g. h{wrong[0]}")
    return count / elapsed


class RawPycares:
    """pycares 5's public API driven like aiodns 4 does it (sock_state_cb or event thread)."""

    def __init__(self, server: str, mode: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.mode = mode
        self.readers: set[int] = set()
        self.writers: set[int] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        if mode == "sockets":
            self.channel = pycares.Channel(servers=[server], sock_state_cb=self._sock_state, timeout=1.0,
                                           tries=3, socket_receive_buffer_size=RCVBUF)
        else:
            self.channel = pycares.Channel(servers=[server], timeout=1.0, tries=3,
                                           socket_receive_buffer_size=RCVBUF)

    def _sock_state(self, fd: int, readable: bool, writable: bool) -> None:
        if self.closed:
            return
        if readable and fd not in self.readers:
            self.loop.add_reader(fd, self.channel.process_fd, fd, pycares.ARES_SOCKET_BAD)
            self.readers.add(fd)
        elif not readable and fd in self.readers:
            self.loop.remove_reader(fd)
            self.readers.discard(fd)
        if writable and fd not in self.writers:
            self.loop.add_writer(fd, self.channel.process_fd, pycares.ARES_SOCKET_BAD, fd)
            self.writers.add(fd)
        elif not writable and fd in self.writers:
            self.loop.remove_writer(fd)
            self.writers.discard(fd)
        if (self.readers or self.writers) and self.timer is None:
            self.timer = self.loop.call_later(1.0, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.closed:
            return
        self.channel.process_fd(pycares.ARES_SOCKET_BAD, pycares.ARES_SOCKET_BAD)
        if (self.readers or self.writers) and self.timer is None:
            self.timer = self.loop.call_later(1.0, self._tick)

    def query(self, name: str) -> asyncio.Future[pycares.DNSResult]:
        fut: asyncio.Future[pycares.DNSResult] = self.loop.create_future()

        def done(result: pycares.DNSResult, error: int | None) -> None:
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(pycares.AresError(error))

        if self.mode == "sockets":
            self.channel.query(name, pycares.QUERY_TYPE_A, callback=done)
        else:
            self.channel.query(
                name, pycares.QUERY_TYPE_A,
                callback=lambda r, e: self.loop.call_soon_threadsafe(done, r, e),
            )
        return fut

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        for fd in self.readers:
            self.loop.remove_reader(fd)
        for fd in self.writers:
            self.loop.remove_writer(fd)
        self.channel.close()


async def bench_raw(server: str, mode: str, count: int, concurrency: int, prefix: str) -> float:
    raw = RawPycares(server, mode)
    try:
        async def one(i: int) -> str:
            result = await raw.query(f"h{i}.{prefix}{ORIGIN}")
            return result.answer[0].data.addr  # type: ignore[no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        raw.close()


async def bench_resolver(server: str, mode: str, count: int, concurrency: int, prefix: str) -> float:
    resolver = Resolver(backends=[CaresBackend([server], loop_mode=mode)], cache=TTLCache(), timeout=10.0)
    try:
        async def one(i: int) -> str:
            answer = await resolver.resolve(f"h{i}.{prefix}{ORIGIN}", "A")
            return answer.records[0].address  # type: ignore[attr-defined,no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        await resolver.aclose()


async def bench_backend(server: str, mode: str, count: int, concurrency: int, prefix: str) -> float:
    backend = CaresBackend([server], loop_mode=mode)
    loop = asyncio.get_running_loop()
    try:
        async def one(i: int) -> str:
            answer = await backend.resolve(Query(f"h{i}.{prefix}{ORIGIN}", "A", loop.time() + 10.0))
            return answer.records[0].address  # type: ignore[attr-defined,no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        await backend.aclose()


async def bench_aiodns(server: str, mode: str, count: int, concurrency: int, prefix: str) -> float:
    import aiodns

    resolver = aiodns.DNSResolver(nameservers=[server], timeout=1.0, tries=3, socket_receive_buffer_size=RCVBUF)
    try:
        async def one(i: int) -> str:
            result = await resolver.query_dns(f"h{i}.{prefix}{ORIGIN}", "A")
            return result.answer[0].data.addr  # type: ignore[no-any-return]

        return await run_workers(count, concurrency, one)
    finally:
        await resolver.close()


BENCHES = {"raw": bench_raw, "resolver": bench_resolver, "backend": bench_backend, "aiodns": bench_aiodns}


async def main_async(args: argparse.Namespace, label: str) -> bool:
    host = random_loopback_address()
    # Every name exists under each prefix label as a wildcard would not: distinct real names.
    zones = {ORIGIN: zone_text(args.names)}
    ok = True
    async with NSD(zones, address=host, port=free_port(host), minimal_responses=args.minimal) as nsd:
        server = f"{nsd.address}:{nsd.port}"
        print(f"\n== {label}: {args.names} distinct names, concurrency {args.concurrency}, NSD at {server}"
              f" (minimal-responses {'yes' if args.minimal else 'no'})", flush=True)
        # Warm-up (sockets, code paths, NSD) on a slice of the names.
        for bench in BENCHES.values():
            await bench(server, "sockets", min(2000, args.names), args.concurrency, "")
        for mode in args.modes:
            samples: dict[str, list[float]] = {name: [] for name in BENCHES if name != "aiodns" or mode == "thread"}
            for _ in range(args.rounds):
                for name in samples:  # interleaved, so drift hits every variant alike
                    samples[name].append(await BENCHES[name](server, mode, args.names, args.concurrency, ""))
            best = {name: max(values) for name, values in samples.items()}
            med = {name: statistics.median(values) for name, values in samples.items()}
            ratio = best["resolver"] / best["raw"]
            ok &= ratio >= TARGET_RATIO
            print(f"  mode={mode:8s} " + "  ".join(
                f"{name}={best[name]:8.0f} qps (median {med[name]:.0f})" for name in samples))
            print(f"  mode={mode:8s} resolver/raw = {ratio:.3f} (best of {args.rounds}), "
                  f"median ratio {med['resolver'] / med['raw']:.3f}, backend/raw = "
                  f"{best['backend'] / best['raw']:.3f}  -> {'OK' if ratio >= TARGET_RATIO else 'BELOW TARGET'}",
                  flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--names", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["sockets", "thread"], choices=["sockets", "thread"])
    parser.add_argument("--minimal", action="store_true",
                        help="NSD minimal-responses (answer section only; raw pycares parses less)")
    parser.add_argument("--uvloop", action="store_true", help="also run everything on uvloop")
    parser.add_argument("--only-uvloop", action="store_true")
    args = parser.parse_args()
    ok = True
    if not args.only_uvloop:
        ok &= asyncio.run(main_async(args, "asyncio"))
    if args.uvloop or args.only_uvloop:
        import uvloop

        ok &= uvloop.run(main_async(args, "uvloop"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
