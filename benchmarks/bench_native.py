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
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

import pycares

from asyncresolve.backends.base import Query
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.backends.native import NativeBackend
from asyncresolve.cache import TTLCache
from asyncresolve.resolver import Resolver
from asyncresolve.testing.peers import NSD, free_port, random_loopback_address

TARGET = 1.5
ORIGIN = "bench.test."
# Same SO_RCVBUF as CaresBackend's default: with the kernel's 208 KiB, replies to 500 queries in
# flight overflow one UDP socket and the run measures c-ares's retry timer.
RCVBUF = 1 << 20


def zone_text(count: int) -> str:
    lines = ["$TTL 300", "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 60", "@ 3600 IN NS ns1",
             "ns1 IN A 127.0.0.1"]
    lines += [f"h{i} IN A {address_of(i)}" for i in range(count)]
    return "\n".join(lines) + "\n"


def address_of(i: int) -> str:
    return f"198.{18 + ((i >> 16) & 1)}.{(i >> 8) & 255}.{i & 255}"  # RFC 2544's benchmarking range, as data


async def run_workers(count: int, concurrency: int, one: Callable[[int], Awaitable[str]]) -> float:
    """Look up names 0..count-1 with ``concurrency`` workers; every address checked; queries per second."""
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
    """pycares 5's public API driven like aiodns 4 drives it, c-ares's sockets watched by the loop."""

    def __init__(self, server: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.readers: set[int] = set()
        self.writers: set[int] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.channel = pycares.Channel(servers=[server], sock_state_cb=self._sock_state, timeout=1.0, tries=3,
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

        self.channel.query(name, pycares.QUERY_TYPE_A, callback=done)
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


async def bench_pycares(server: str, count: int, concurrency: int, prefix: str) -> float:
    raw = RawPycares(server)
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
