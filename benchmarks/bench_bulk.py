"""``asyncresolve bulk`` throughput and memory against NSD, next to raw pycares in the same run.

1. N distinct names (default 100,000) that NSD serves from one zone on a random 127.x
   address (NSD answers far faster than one Python client asks, so the client is measured).
2. ``raw``: pycares 5's public ``Channel.query`` driven from asyncio the way aiodns drives
   it, ``concurrency`` queries in flight, every answer checked -- the ceiling.
   ``resolve_many``: the library in this process (a ``PoolBackend``, JSON lines to /dev/null).
3. ``bulk``: the command a user runs, ``asyncresolve bulk NAMES --nameserver NSD -o OUT
   --progress`` (progress bar drawn, JSON lines written), in a subprocess; names/s is read
   from its ``--stats-file`` (interpreter start-up left out), peak RSS from ``/proc`` (VmHWM).
   Every output line is checked (one NOERROR per name).
4. ``stream``: ``asyncresolve bulk -`` fed a generated stream of ``--stream`` names
   (default 10,000,000; most are NXDOMAIN, all real queries to NSD) through a pipe; its
   peak RSS must stay under 200 MB. ``--stream 0`` skips it (it takes ~N / rate seconds).

Targets: bulk/raw >= 0.85 names/s; stream peak RSS < 200 MB. The rounds are interleaved
(raw, bulk, raw, bulk...) and the best of each is compared. ``--profile`` runs the bulk
command once more under py-spy (if installed) and prints where the time goes.
Only loopback addresses are used.

Run: ``python benchmarks/bench_bulk.py [--names 100000] [--concurrency 500] [--stream 10000000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import pycares

from asyncresolve.testing.peers import NSD, free_port, random_loopback_address

ORIGIN = "bench.test."
TARGET_RATIO = 0.85
RSS_LIMIT_MB = 200
RCVBUF = 1 << 20
SCRIPT = str(Path(sys.executable).with_name("asyncresolve"))


def zone_text(count: int) -> str:
    lines = ["$TTL 300", "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 60", "@ 3600 IN NS ns1",
             "ns1 IN A 127.0.0.1"]
    lines += [f"h{i} IN A {address_of(i)}" for i in range(count)]
    return "\n".join(lines) + "\n"


def address_of(i: int) -> str:
    return f"198.{18 + ((i >> 16) & 1)}.{(i >> 8) & 255}.{i & 255}"


async def raw_pycares(server: str, names: list[str], concurrency: int) -> float:
    """Names per second with raw pycares (sock_state_cb on the asyncio loop, as aiodns does it)."""
    loop = asyncio.get_running_loop()
    readers: set[int] = set()
    writers: set[int] = set()

    def sock_state(fd: int, readable: bool, writable: bool) -> None:
        if readable and fd not in readers:
            loop.add_reader(fd, channel.process_fd, fd, pycares.ARES_SOCKET_BAD)
            readers.add(fd)
        elif not readable and fd in readers:
            loop.remove_reader(fd)
            readers.discard(fd)
        if writable and fd not in writers:
            loop.add_writer(fd, channel.process_fd, pycares.ARES_SOCKET_BAD, fd)
            writers.add(fd)
        elif not writable and fd in writers:
            loop.remove_writer(fd)
            writers.discard(fd)

    channel = pycares.Channel(servers=[server], sock_state_cb=sock_state, timeout=2.0, tries=1,
                              socket_receive_buffer_size=RCVBUF)
    wrong = 0
    iterator = iter(enumerate(names))

    async def worker() -> None:
        nonlocal wrong
        for i, name in iterator:
            fut: asyncio.Future[str] = loop.create_future()

            def done(result: object, error: int | None, fut: asyncio.Future[str] = fut) -> None:
                if error is None:
                    fut.set_result(result.answer[0].data.addr)  # type: ignore[attr-defined]
                else:
                    fut.set_result("")

            channel.query(name, pycares.QUERY_TYPE_A, callback=done)
            if await fut != address_of(i):
                wrong += 1

    gc.collect()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    for fd in readers:
        loop.remove_reader(fd)
    for fd in writers:
        loop.remove_writer(fd)
    channel.close()
    if wrong:
        raise AssertionError(f"raw pycares: {wrong} wrong or failed answers")
    return len(names) / elapsed


async def library(server: str, names: list[str], concurrency: int) -> float:
    """Names per second of ``resolve_many`` in this process (PoolBackend, JSON lines to /dev/null)."""
    from asyncresolve import Resolver, TTLCache
    from asyncresolve.bulk import PoolBackend
    from asyncresolve.bulk.writers import JsonLinesWriter

    wrong = 0
    with open(os.devnull, "w") as sink:  # noqa: ASYNC230 - /dev/null, opened before the timed run
        writer = JsonLinesWriter(sink)
        async with Resolver([PoolBackend([server], timeout=2.0)], cache=TTLCache(10_000), timeout=2.0) as resolver:
            gc.collect()
            started = time.perf_counter()
            async for result in resolver.resolve_many(names, concurrency=concurrency):
                writer.write(result)
                number = int(result.name[1:].split(".")[0])
                if result.answer is None or result.answer.addresses[0] != address_of(number):
                    wrong += 1
            elapsed = time.perf_counter() - started
    if wrong:
        raise AssertionError(f"resolve_many: {wrong} wrong or failed answers")
    return len(names) / elapsed


def run_bulk(server: str, names_file: str, out: str, stats: str, concurrency: int, *,
             stdin_feed: int | None = None, profile: str | None = None) -> tuple[float, float]:
    """(names/s, peak RSS MB) of one ``asyncresolve bulk`` run with the progress bar on."""
    if os.path.exists(stats):
        os.unlink(stats)
    command = [SCRIPT, "bulk", names_file if stdin_feed is None else "-", "--nameserver", server, "-o", out,
               "-c", str(concurrency), "--progress", "--stats-file", stats, "--stats-interval", "3600"]
    if profile:
        command = [shutil.which("py-spy") or "py-spy", "record", "-o", profile, "-f", "raw", "--", *command]
    process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin_feed else None,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stdin_feed:
        threading.Thread(target=feed, args=(process.stdin, stdin_feed), daemon=True).start()
    peak = 0.0
    while process.poll() is None:  # wait4's ru_maxrss would count the pages forked from this process
        peak = max(peak, high_water_mb(process.pid))
        time.sleep(0.2)
    if process.returncode != 0:
        raise RuntimeError(f"asyncresolve bulk exited with {process.returncode}")
    last = json.loads(Path(stats).read_text().splitlines()[-1])
    return last["resolved"] / last["elapsed"], peak


def feed(stdin: IO[bytes], count: int) -> None:
    """Write ``count`` generated names (one in ten exists, the rest are NXDOMAIN) as they are made."""
    chunk = 100_000
    for start in range(0, count, chunk):
        lines = "".join(f"n{i}.{ORIGIN}\n" if i % 10 else f"h{i % 100_000}.{ORIGIN}\n"
                        for i in range(start, min(start + chunk, count)))
        stdin.write(lines.encode())
    stdin.close()


def high_water_mb(pid: int) -> float:
    """The peak RSS (VmHWM) of a running process, in MB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def check_output(out: str, count: int) -> None:
    seen = set()
    with open(out) as handle:
        for line in handle:
            record = json.loads(line)
            i = int(record["name"][1:].split(".")[0])
            assert record["status"] == "NOERROR", record
            assert record["data"]["answers"][0]["data"] == address_of(i), record
            seen.add(i)
    assert len(seen) == count, f"{len(seen)} distinct names in the output, not {count}"


async def main_async(args: argparse.Namespace) -> bool:
    host = random_loopback_address()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"h{i}.{ORIGIN}" for i in range(args.names)]
        names_file = os.path.join(tmp, "names.txt")
        Path(names_file).write_text("\n".join(names) + "\n")  # noqa: ASYNC240 - set-up, nothing runs yet
        out, stats = os.path.join(tmp, "out.jsonl"), os.path.join(tmp, "stats.jsonl")
        async with NSD({ORIGIN: zone_text(max(args.names, 100_000))}, address=host, port=free_port(host)) as nsd:
            server = f"{nsd.address}:{nsd.port}"
            print(f"== {args.names} names, concurrency {args.concurrency}, NSD at {server}", flush=True)
            await raw_pycares(server, names[:5000], args.concurrency)  # warm-up
            raw, bulk, rss, lib = [], [], [], []
            for _ in range(args.rounds):
                raw.append(await raw_pycares(server, names, args.concurrency))
                lib.append(await library(server, names, args.concurrency))
                rate, peak = await asyncio.to_thread(run_bulk, server, names_file, out, stats, args.concurrency)
                check_output(out, args.names)
                bulk.append(rate)
                rss.append(peak)
                print(f"   raw pycares {raw[-1]:8.0f} names/s   resolve_many {lib[-1]:8.0f} names/s   "
                      f"asyncresolve bulk {rate:8.0f} names/s (peak RSS {peak:.0f} MB)", flush=True)
            ratio = max(bulk) / max(raw) if args.rounds else TARGET_RATIO
            ok &= ratio >= TARGET_RATIO
            if args.rounds:
                print(f"resolve_many/raw = {max(lib) / max(raw):.3f}; "
                      f"bulk/raw = {ratio:.3f} (best of {args.rounds}; target {TARGET_RATIO}) -> "
                      f"{'OK' if ratio >= TARGET_RATIO else 'BELOW TARGET'}; bulk peak RSS {max(rss):.0f} MB",
                      flush=True)
            if args.profile:
                if shutil.which("py-spy") is None:
                    print("   (py-spy not installed: no profile)")
                else:
                    profile = os.path.join(tmp, "bulk.folded")
                    await asyncio.to_thread(run_bulk, server, names_file, out, stats, args.concurrency,
                                            profile=profile)
                    print_profile(profile)
            if args.stream:
                started = time.perf_counter()
                rate, peak = await asyncio.to_thread(run_bulk, server, names_file, out, stats, args.concurrency,
                                                     stdin_feed=args.stream)
                good = peak < RSS_LIMIT_MB
                ok &= good
                print(f"stream of {args.stream} generated names through stdin: {rate:.0f} names/s, "
                      f"{time.perf_counter() - started:.0f} s, peak RSS {peak:.0f} MB (limit {RSS_LIMIT_MB}) -> "
                      f"{'OK' if good else 'OVER'}", flush=True)
    return ok


def print_profile(folded: str, top: int = 25) -> None:
    """Self time per function from py-spy's folded stacks."""
    own: dict[str, int] = {}
    total = 0
    for line in Path(folded).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frame = stack.rsplit(";", 1)[-1]
        own[frame] = own.get(frame, 0) + int(count)
        total += int(count)
    print(f"   profile of one bulk run (py-spy, {total} samples), self time:")
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"   {100 * count / total:5.1f}%  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (0: only the stream run)")
    parser.add_argument("--stream", type=int, default=10_000_000, help="names in the RSS stream run (0: skip)")
    parser.add_argument("--profile", action="store_true", help="profile one bulk run with py-spy")
    args = parser.parse_args()
    return 0 if asyncio.run(main_async(args)) else 1


if __name__ == "__main__":
    sys.exit(main())
