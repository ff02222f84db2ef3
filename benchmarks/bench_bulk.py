"""``asyncresolve bulk`` throughput and memory against NSD, next to raw pycares in the same run.

1. N distinct names (default 100,000) that NSD serves from one zone on a random 127.x
   address (NSD answers far faster than one Python client asks, so the client is measured).
2. Contenders, rounds interleaved (raw, bulk, bulk-same, native, raw, bulk...):

   * ``raw pycares``: pycares 5's public ``Channel.query`` driven from asyncio the way aiodns
     drives it, ``concurrency`` queries in flight, every answer checked -- the ceiling. It runs
     c-ares's defaults: one UDP socket for the whole run, no 0x20 (EDNS on, as for the others).
   * ``bulk``: the command a user runs, ``asyncresolve bulk NAMES --nameserver NSD -o OUT
     --progress`` (progress bar drawn, JSON lines written), in a subprocess, with its defaults:
     0x20 and a fresh socket (random port) every 4 queries.
   * ``bulk same``: the same command with raw pycares's settings (``--no-0x20
     --udp-max-queries 0``): like against like.
   * ``bulk native``: the same command with ``--backends native`` (its defaults: 0x20, a fresh
     socket every 256 queries); issue 12 asks 1.5 x raw pycares of it.
   * ``resolve_many`` (``--library``): the library in this process, JSON lines to /dev/null.

   For the commands, names/s and CPU time come from their ``--stats-file`` (the run only:
   interpreter start-up left out), peak RSS from ``/proc`` (VmHWM). Every output line is
   checked (one NOERROR with the right address per name). CPU time per name
   (``time.process_time``) is steadier than names/s on a shared machine: both are printed,
   and the ratios to raw pycares of the medians.
3. ``--stream N``: ``asyncresolve bulk -`` fed a generated stream of N names (one in ten
   exists, the rest are NXDOMAIN; all real queries to NSD) through a pipe, stopped by SIGINT
   after ``--stream-minutes``; prints RSS (VmRSS, VmHWM) and progress every minute. Its peak
   RSS must stay under 200 MB.

Targets: bulk/raw >= 0.85 names/s with the defaults (and like for like), bulk native/raw >= 1.5;
stream peak RSS < 200 MB. ``--profile`` runs the bulk command once more under py-spy (if
installed) and prints where the time goes. Only loopback addresses are used, and the whole
run happens in a private mount namespace whose ``/etc/resolv.conf`` names 127.0.0.1 (needs
root; ``unshare -m``), so nothing can query the machine's nameserver.

Run: ``python benchmarks/bench_bulk.py [--names 100000] [--concurrency 500] [--rounds 3]
[--stream 10000000] [--stream-minutes 30] [--library] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import statistics
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
#: label -> (names/s ratio to raw pycares asked for, of what)
TARGETS = {
    "bulk": (0.85, "issue 9, the defaults"),
    "bulk same": (0.85, "like for like"),
    "bulk native": (1.5, "issue 12"),
}
RSS_LIMIT_MB = 200
RCVBUF = 1 << 20
SCRIPT = str(Path(sys.executable).with_name("asyncresolve"))
PY_SPY = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
NAMESPACE_FLAG = "ASYNCRESOLVE_BENCH_BULK_IN_NAMESPACE"
RAW = "raw pycares"
#: label -> extra arguments of ``asyncresolve bulk`` (besides input, server, output, -c, progress)
COMMANDS = {
    "bulk": [],
    "bulk same": ["--no-0x20", "--udp-max-queries", "0"],
    "bulk native": ["--backends", "native"],
}


def zone_text(count: int) -> str:
    lines = ["$TTL 300", "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 60", "@ 3600 IN NS ns1",
             "ns1 IN A 127.0.0.1"]
    lines += [f"h{i} IN A {address_of(i)}" for i in range(count)]
    return "\n".join(lines) + "\n"


def address_of(i: int) -> str:
    return f"198.{18 + ((i >> 16) & 1)}.{(i >> 8) & 255}.{i & 255}"


class Pass:
    """One contender's pass: names per second and CPU seconds per name."""

    __slots__ = ("cpu", "rate", "rss")

    def __init__(self, rate: float, cpu: float, rss: float = 0.0) -> None:
        self.rate = rate
        self.cpu = cpu
        self.rss = rss


async def raw_pycares(server: str, names: list[str], concurrency: int) -> float:
    """Names per second with raw pycares (sock_state_cb on the asyncio loop, as aiodns does it)."""
    return (await raw_pass(server, names, concurrency)).rate


async def raw_pass(server: str, names: list[str], concurrency: int) -> Pass:
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
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    for fd in readers:
        loop.remove_reader(fd)
    for fd in writers:
        loop.remove_writer(fd)
    channel.close()
    if wrong:
        raise AssertionError(f"raw pycares: {wrong} wrong or failed answers")
    return Pass(len(names) / elapsed, cpu / len(names))


async def library(server: str, names: list[str], concurrency: int) -> Pass:
    """``resolve_many`` in this process (PoolBackend with its defaults, JSON lines to /dev/null)."""
    from asyncresolve import Resolver, TTLCache
    from asyncresolve.bulk import PoolBackend
    from asyncresolve.bulk.writers import JsonLinesWriter

    wrong = 0
    with open(os.devnull, "w") as sink:  # noqa: ASYNC230 - /dev/null, opened before the timed run
        writer = JsonLinesWriter(sink)
        async with Resolver([PoolBackend([server], timeout=2.0)], cache=TTLCache(10_000), timeout=2.0) as resolver:
            gc.collect()
            started, cpu = time.perf_counter(), time.process_time()
            async for result in resolver.resolve_many(names, concurrency=concurrency):
                writer.write(result)
                number = int(result.name[1:].split(".")[0])
                if result.answer is None or result.answer.addresses[0] != address_of(number):
                    wrong += 1
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if wrong:
        raise AssertionError(f"resolve_many: {wrong} wrong or failed answers")
    return Pass(len(names) / elapsed, cpu / len(names))


def run_bulk(server: str, names_file: str, out: str, stats: str, concurrency: int, *,
             stdin_feed: int | None = None, profile: str | None = None, extra: list[str] | None = None,
             minutes: float | None = None, stats_interval: float = 3600) -> tuple[float, float]:
    """(names/s, peak RSS MB) of one ``asyncresolve bulk`` run with the progress bar on."""
    result = bulk_pass(server, names_file, out, stats, concurrency, stdin_feed=stdin_feed, profile=profile,
                       extra=extra, minutes=minutes, stats_interval=stats_interval)
    return result.rate, result.rss


def bulk_pass(server: str, names_file: str, out: str, stats: str, concurrency: int, *,
              stdin_feed: int | None = None, profile: str | None = None, extra: list[str] | None = None,
              minutes: float | None = None, stats_interval: float = 3600) -> Pass:
    if os.path.exists(stats):
        os.unlink(stats)
    command = [SCRIPT, "bulk", names_file if stdin_feed is None else "-", "--nameserver", server, "-o", out,
               "-c", str(concurrency), "--progress", "--stats-file", stats, "--stats-interval", str(stats_interval),
               *(extra or [])]
    if profile:
        command = [PY_SPY or "py-spy", "record", "-r", "200", "-o", profile, "-f", "raw", "--", *command]
    process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin_feed else None,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stdin_feed:
        threading.Thread(target=feed, args=(process.stdin, stdin_feed), daemon=True).start()
    peak = 0.0
    started = time.monotonic()
    next_report = started + 60
    stopped = False
    while process.poll() is None:  # wait4's ru_maxrss would count the pages forked from this process
        peak = max(peak, high_water_mb(process.pid))
        now = time.monotonic()
        if minutes is not None and now >= next_report:
            next_report += 60
            print(f"   {now - started:6.0f} s: {progress_of(stats)}, RSS {rss_mb(process.pid):.0f} MB, "
                  f"peak {peak:.0f} MB", flush=True)
        if minutes is not None and not stopped and now - started > minutes * 60:
            stopped = True
            print(f"   {minutes:g} minutes are up: SIGINT", flush=True)
            process.send_signal(signal.SIGINT)
        time.sleep(0.2)
    if process.returncode != (128 + signal.SIGINT if stopped else 0):
        raise RuntimeError(f"asyncresolve bulk exited with {process.returncode}")
    last = json.loads(Path(stats).read_text().splitlines()[-1])
    return Pass(last["resolved"] / last["elapsed"], last["cpu"] / max(1, last["resolved"]), peak)


def progress_of(stats: str) -> str:
    try:
        last = json.loads(Path(stats).read_text().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return "no stats yet"
    return f"{last['resolved']:,} names done ({last['rate']:.0f}/s)"


def feed(stdin: IO[bytes], count: int) -> None:
    """Write ``count`` generated names (one in ten exists, the rest are NXDOMAIN) as they are made."""
    chunk = 100_000
    try:
        for start in range(0, count, chunk):
            lines = "".join(f"n{i}.{ORIGIN}\n" if i % 10 else f"h{i % 100_000}.{ORIGIN}\n"
                            for i in range(start, min(start + chunk, count)))
            stdin.write(lines.encode())
        stdin.close()
    except (BrokenPipeError, ValueError):  # the command was stopped before the end of the stream
        pass


def _status_kb(pid: int, field: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def high_water_mb(pid: int) -> float:
    """The peak RSS (VmHWM) of a running process, in MB (0 once it is gone)."""
    return _status_kb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS:")


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
            print(f"== {args.names} names, concurrency {args.concurrency}, NSD at {server}, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            await raw_pycares(server, names[:5000], args.concurrency)  # warm-up
            labels = [RAW, *COMMANDS] + (["resolve_many"] if args.library else [])
            passes: dict[str, list[Pass]] = {label: [] for label in labels}
            for _ in range(args.rounds):
                for label in labels:
                    if label == RAW:
                        result = await raw_pass(server, names, args.concurrency)
                    elif label == "resolve_many":
                        result = await library(server, names, args.concurrency)
                    else:
                        result = await asyncio.to_thread(bulk_pass, server, names_file, out, stats,
                                                         args.concurrency, extra=COMMANDS[label])
                        check_output(out, args.names)
                    passes[label].append(result)
                print("   " + "   ".join(f"{label} {p[-1].rate:6.0f}/s {p[-1].cpu * 1e6:5.1f} us"
                                         for label, p in passes.items()), flush=True)
            if args.rounds:
                ok &= report(passes, args.rounds)
            if args.profile:
                if PY_SPY is None:
                    print("   (py-spy not installed: no profile)")
                else:
                    for label in args.profile_commands:
                        profile = os.path.join(tmp, "bulk.folded")
                        await asyncio.to_thread(bulk_pass, server, names_file, out, stats, args.concurrency,
                                                profile=profile, extra=COMMANDS[label])
                        print_profile(profile, label)
            if args.stream:
                started = time.perf_counter()
                print(f"stream of {args.stream:,} generated names through stdin (at most {args.stream_minutes:g} "
                      f"minutes), load {os.getloadavg()[0]:.1f}:", flush=True)
                result = await asyncio.to_thread(bulk_pass, server, "-", out, stats, args.concurrency,
                                                 stdin_feed=args.stream, minutes=args.stream_minutes,
                                                 stats_interval=5)
                good = result.rss < RSS_LIMIT_MB
                ok &= good
                last = json.loads(Path(stats).read_text().splitlines()[-1])  # noqa: ASYNC240 - after the run
                print(f"stream: {last['resolved']:,} of {args.stream:,} names in {last['elapsed']:.0f} s "
                      f"({result.rate:.0f} names/s, {result.cpu * 1e6:.1f} us CPU per name), "
                      f"{time.perf_counter() - started:.0f} s in all, peak RSS {result.rss:.0f} MB "
                      f"(limit {RSS_LIMIT_MB}) -> {'OK' if good else 'OVER'}; {last['counts']}", flush=True)
    return ok


def report(passes: dict[str, list[Pass]], rounds: int) -> bool:
    raw = passes[RAW]
    raw_rate = statistics.median(p.rate for p in raw)
    raw_cpu = statistics.median(p.cpu for p in raw)
    print(f"medians of {rounds} rounds (ratios to raw pycares; CPU ratio = raw's CPU per name / the contender's):")
    ok = True
    for label, runs in passes.items():
        rate = statistics.median(p.rate for p in runs)
        cpu = statistics.median(p.cpu for p in runs)
        rss = max(p.rss for p in runs)
        line = (f"   {label:13} {rate:7.0f} names/s ({min(p.rate for p in runs):.0f}-{max(p.rate for p in runs):.0f}) "
                f"{rate / raw_rate:5.2f} x   CPU {cpu * 1e6:5.1f} us/name {raw_cpu / cpu:5.2f} x")
        if rss:
            line += f"   peak RSS {rss:.0f} MB"
        if label in TARGETS:
            target, what = TARGETS[label]
            met = rate / raw_rate >= target
            line += f"   -> {'OK' if met else 'BELOW'} (target {target} x, {what})"
            ok &= met
        print(line, flush=True)
    return ok


def layer_of(frame: str) -> str:
    """The part of the program a py-spy frame belongs to (``name (path:line)``)."""
    path = frame.rpartition("(")[2]
    if "asyncresolve/bulk/" in path:
        return "bulk layer (runner, pool, writer, input, progress)"
    if "asyncresolve/backends/cares.py" in path and ("submit" in frame or "_process" in frame):
        return "c-ares in C and its system calls (send, recv, epoll), under CaresBackend"
    if "asyncresolve/backends/" in path:
        return "backend in Python (c-ares callbacks, records, answers)"
    if "asyncresolve/" in path:
        return "resolver layer (resolver, coalescer, chain, cache, answer, names)"
    if "rich/" in path:
        return "rich (progress bar)"
    if "asyncio/" in path or "selectors.py" in path:
        return "event loop"
    return "other (start-up, imports)"


def print_profile(folded: str, label: str, top: int = 20) -> None:
    """Self time per function and per layer from py-spy's folded stacks (main thread only:
    py-spy samples the idle thread of ``asyncio.to_thread`` blocked in its queue as busy)."""
    own: dict[str, int] = {}
    layers: dict[str, int] = {}
    total = others = 0
    for line in Path(folded).read_text().splitlines():
        stack, _, text = line.rpartition(" ")
        count = int(text)
        frames = stack.split(";")
        if any("threading.py" in frame for frame in frames[:8]):
            others += count
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + count
        layer = next((layer_of(f) for f in reversed(frames) if "asyncresolve/" in f), None) or layer_of(frames[-1])
        layers[layer] = layers.get(layer, 0) + count
        total += count
    print(f"   profile of one '{label}' run (py-spy, {total} samples of the main thread; {others} of idle "
          f"threads left out), self time by layer (innermost asyncresolve frame):")
    for layer, count in sorted(layers.items(), key=lambda kv: -kv[1]):
        print(f"   {100 * count / total:5.1f}%  {layer}")
    print("   by function:")
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"   {100 * count / total:5.1f}%  {frame}")


def in_namespace(argv: list[str]) -> int | None:
    """Re-run this script in a private mount namespace whose resolv.conf names 127.0.0.1
    (None: already there, go on)."""
    if os.environ.get(NAMESPACE_FLAG) == "1":
        return None
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("bench_bulk needs root and unshare: it runs in a private mount namespace", file=sys.stderr)
        return 2
    with tempfile.NamedTemporaryFile("w", prefix="bench-bulk-resolv-", suffix=".conf", delete=False) as conf:
        conf.write("nameserver 127.0.0.1\n")
    env = {**os.environ, NAMESPACE_FLAG: "1", "ASYNCRESOLVE_BENCH_RESOLV_CONF": conf.name,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                       os.environ.get("PYTHONPATH")]))}
    inner = 'mount --bind "$ASYNCRESOLVE_BENCH_RESOLV_CONF" /etc/resolv.conf && exec "$0" "$@"'
    try:
        return subprocess.call(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner,
                                sys.executable, os.path.abspath(__file__), *argv], env=env)
    finally:
        os.unlink(conf.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (0: none)")
    parser.add_argument("--library", action="store_true", help="also measure resolve_many in this process")
    parser.add_argument("--stream", type=int, default=0, help="names in the RSS stream run (0: none)")
    parser.add_argument("--stream-minutes", type=float, default=30.0, help="stop the stream run after this long")
    parser.add_argument("--profile", action="store_true", help="profile bulk runs with py-spy")
    parser.add_argument("--profile-commands", nargs="+", choices=list(COMMANDS), default=["bulk same"])
    args = parser.parse_args()
    status = in_namespace(sys.argv[1:])
    if status is not None:
        return status
    return 0 if asyncio.run(main_async(args)) else 1


if __name__ == "__main__":
    sys.exit(main())
