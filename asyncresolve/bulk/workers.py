"""``asyncresolve bulk --workers N``: N worker processes, one merged output.

The parent reads the names, drops the pairs ``--resume`` found done, and sends every other
(name, type) to one worker, chosen by a stable hash of the normalised name: the repeats of a
name all go to the same worker, whose cache and coalescer still share one lookup. A worker is
``asyncresolve bulk - --worker-mode`` with its own event loop, backend chain and share of
``-c``/``--rate``; it reads ``name<TAB>type`` lines on stdin and writes one JSON envelope per
result on stdout: the status, the tries, the wildcard flag and the record already formatted.
Only the parent writes the output (one write per record, so ``--resume`` stays exact), and it
draws the one progress bar from the counters the envelopes carry.

Stopping: the parent stops feeding, closes the workers' stdin and sends them SIGTERM; each
reports what it completed and exits, and the parent writes all of it before it exits. The
workers run in their own session, so a Ctrl-C at the terminal reaches the parent only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import signal
import sys
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from ..errors import InvalidName, InvalidQuery
from ..names import normalize_name
from .inputs import count_names, read_names, read_stream
from .writers import WRITERS

FLUSH_INTERVAL = 1.0
WORKER_FLUSH = 0.05
_BATCH = 256


def shard_of(name: str, workers: int) -> int:
    """The worker of a name: stable across runs and processes (``hash()`` of a str is salted)."""
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) % workers


def split_limits(args: argparse.Namespace) -> tuple[int, float | None, float | None]:
    """Each worker's ``-c``, ``--rate`` and ``--rate-per-server``: the totals divided by N."""
    n = args.workers
    concurrency = max(1, math.ceil(args.concurrency / n))
    rate = args.rate / n if args.rate is not None else None
    per_server = args.rate_per_server / n if args.rate_per_server is not None else None
    return concurrency, rate, per_server


def worker_argv(args: argparse.Namespace, servers: list[str]) -> list[str]:
    concurrency, rate, per_server = split_limits(args)
    argv = [sys.executable, "-m", "asyncresolve", "bulk", "-", "--worker-mode", "--no-progress",
            "-c", str(concurrency), "--retries", str(args.retries), "--retry-on", args.retry_on,
            "--timeout", repr(args.timeout), "--format", args.format, "--port", str(args.port),
            "--cache-size", str(args.cache_size)]
    if args.udp_max_queries is not None:
        argv += ["--udp-max-queries", str(args.udp_max_queries)]
    if not args.dns0x20:
        argv.append("--no-0x20")
    if rate is not None:
        argv += ["--rate", repr(rate)]
    if per_server is not None:
        argv += ["--rate-per-server", repr(per_server)]
    if args.backends:
        argv += ["--backends", args.backends]
    for server in servers:
        argv += ["--nameserver", server]
    if args.hosts_file:
        argv += ["--hosts-file", args.hosts_file]
    for hint in args.root_hint:
        argv += ["--root-hint", hint]
    if args.wildcards:
        argv.append("--wildcards")
    if args.drop_wildcards:
        argv.append("--drop-wildcards")
    return argv


# -- the worker -------------------------------------------------------------------------
async def _stdin_pairs() -> AsyncIterator[tuple[str, str]]:
    stream = sys.stdin.buffer
    while True:
        lines = await asyncio.to_thread(stream.readlines, 1 << 16)
        if not lines:
            return
        for line in lines:
            text = line.decode("utf-8", "surrogateescape").rstrip("\n")
            name, _, rdtype = text.rpartition("\t")
            yield name, rdtype


async def run_worker(args: argparse.Namespace, types: list[str], servers: list[str]) -> int:
    from .cli import build_run

    loop = asyncio.get_running_loop()
    pools, run = build_run(args, servers, _stdin_pairs(), types)
    formatter = WRITERS[args.format](io.StringIO(), fresh=False)  # formats only: the parent writes
    out = sys.stdout
    for pool in pools:
        pool.on_disable = lambda upstream, reason: print(
            f"asyncresolve bulk: warning: no longer sending to {upstream.address}: {reason}", file=sys.stderr,
            flush=True)
    stopped = 0

    def on_signal(signum: int) -> None:
        nonlocal stopped
        stopped = signum
        run.stop()

    loop.add_signal_handler(signal.SIGTERM, on_signal, signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop

    async def flush_often() -> None:
        while True:
            await asyncio.sleep(WORKER_FLUSH)
            out.flush()

    flusher = loop.create_task(flush_often())
    drop = args.drop_wildcards
    try:
        async for result in run.results():
            record = None if (drop and result.wildcard) else formatter.format(result)
            out.write(json.dumps({"s": result.status, "t": result.tries, "w": result.wildcard, "r": record}) + "\n")
    except BrokenPipeError:  # the parent has gone: nobody to report to
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        with contextlib.suppress(OSError, ValueError):
            out.flush()
        await run.resolver.aclose()
    return 128 + stopped if stopped else 0


# -- the parent -------------------------------------------------------------------------
class Totals:
    """The counters ``Progress`` reads from a ``BulkRun``, summed over the workers' envelopes."""

    def __init__(self, wildcards: bool) -> None:
        self.counts: Counter[str] = Counter()
        self.done = 0
        self.skipped = 0
        self.sent = 0
        self.fed = 0
        self.wildcard_hits = 0
        self.wildcards: object | None = True if wildcards else None

    @property
    def in_flight(self) -> int:
        return self.fed - self.done


def _key(raw: str) -> str:
    """The name as ``--resume`` records it (normalised, or as given when invalid): sent and sharded on."""
    try:
        return normalize_name(raw)
    except (InvalidName, InvalidQuery):
        return raw.strip()


async def _file_names(path: str) -> AsyncIterator[str]:
    names = read_names(path)

    def chunk(it: Iterator[str]) -> list[str]:
        return [name for _, name in zip(range(4096), it, strict=False)]

    while True:
        batch = await asyncio.to_thread(chunk, names)
        if not batch:
            return
        for name in batch:
            yield name


class _Worker:
    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index = index
        self.proc = proc
        self.alive = True
        self.pending: list[bytes] = []


async def run_parent(args: argparse.Namespace, types: list[str], servers: list[str]) -> int:
    from .cli import open_output, report_stop
    from .progress import Progress

    loop = asyncio.get_running_loop()
    show_bar = sys.stderr.isatty() if args.progress is None else args.progress
    found, out, writer = await open_output(args)
    skip: set[tuple[str, str]] = found or set()
    totals = Totals(args.wildcards or args.drop_wildcards)
    progress = Progress(cast(Any, totals), bar=show_bar, stream=sys.stderr, stats_file=args.stats_file,
                        stats_interval=args.stats_interval)
    argv = worker_argv(args, servers)
    workers = []
    for index in range(args.workers):
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True,
            limit=1 << 24)
        workers.append(_Worker(index, proc))
    stopped_by = 0
    broken_pipe = False
    feeder: asyncio.Task[None] | None = None

    def stop_workers() -> None:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)

    def on_signal(signum: int) -> None:
        nonlocal stopped_by
        if stopped_by:
            for worker in workers:  # a second signal: stop at once
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
        stopped_by = signum
        if feeder is not None:
            feeder.cancel()
        stop_workers()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)

    async def send(worker: _Worker) -> None:
        data, worker.pending = b"".join(worker.pending), []
        stdin = worker.proc.stdin
        if not worker.alive or stdin is None:
            return
        try:
            stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            worker.alive = False  # it crashed: reported when it is reaped

    async def feed() -> None:
        names = read_stream() if args.input == "-" else _file_names(args.input)
        n = len(workers)
        async for raw in names:
            for rdtype in types:
                text = _key(raw)
                if (text, rdtype) in skip:
                    totals.skipped += 1
                    continue
                worker = workers[shard_of(text, n)]
                worker.pending.append(f"{text}\t{rdtype}\n".encode("utf-8", "surrogateescape"))
                totals.fed += 1
                if len(worker.pending) >= _BATCH:
                    await send(worker)
        for worker in workers:
            await send(worker)

    async def collect(worker: _Worker) -> None:
        nonlocal broken_pipe
        stdout = worker.proc.stdout
        assert stdout is not None
        while True:
            line = await stdout.readline()
            if not line:
                return
            try:
                envelope = json.loads(line)
            except ValueError:
                continue
            totals.done += 1
            totals.counts[envelope["s"]] += 1
            totals.sent += envelope["t"]
            if envelope["w"]:
                totals.wildcard_hits += 1
            record = envelope["r"]
            if record is None or broken_pipe:
                continue
            try:
                out.write(record)
                writer.written += 1
            except BrokenPipeError:
                broken_pipe = True
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                on_signal(signal.SIGPIPE)

    async def flush_every() -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            with contextlib.suppress(OSError, ValueError):
                out.flush()

    background: list[asyncio.Task[Any]] = [loop.create_task(flush_every())]
    if args.input != "-":
        counting = loop.create_task(asyncio.to_thread(count_names, args.input))
        counting.add_done_callback(
            lambda t: progress.set_total(t.result() * len(types)) if not t.cancelled() and not t.exception() else None)
        background.append(counting)
    progress.start()
    collectors = [loop.create_task(collect(worker)) for worker in workers]
    feeder = loop.create_task(feed())
    crashed: list[str] = []
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        if feeder.cancelled() and not stopped_by:
            raise asyncio.CancelledError
        for worker in workers:  # end of input: each worker finishes what it has and exits
            if worker.proc.stdin is not None:
                worker.proc.stdin.close()
        await asyncio.gather(*collectors)
        for worker in workers:
            code = await worker.proc.wait()
            if code != 0 and not (stopped_by and code == 128 + signal.SIGTERM):
                crashed.append(f"worker {worker.index} exited with code {code}")
    finally:
        for task in [*background, *collectors]:
            task.cancel()
        await asyncio.gather(*background, *collectors, return_exceptions=True)
        for worker in workers:
            if worker.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                await worker.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            writer.flush()
        if out is not sys.stdout:
            out.close()
        await progress.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if broken_pipe:
        return 128 + signal.SIGPIPE
    print(progress.summary(args.output) + f" ({len(workers)} workers)", file=sys.stderr, flush=True)
    for message in crashed:
        print(f"asyncresolve bulk: error: {message}; its unfinished names are not in the output"
              + ("; run the same command with --resume to redo them" if args.output else ""),
              file=sys.stderr, flush=True)
    if stopped_by:
        return report_stop(stopped_by, args, writer)
    return 1 if crashed else 0
