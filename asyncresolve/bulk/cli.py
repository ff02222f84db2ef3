"""``asyncresolve bulk``: resolve a stream of names from a file or stdin (see README, "Bulk resolution")."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
from collections.abc import Callable
from typing import IO, Any

from ..backends.base import Backend
from ..cache import TTLCache
from ..errors import InvalidQuery
from ..names import normalize_rdtype
from ..resolver import Resolver
from .inputs import count_names, read_names, read_stream
from .pool import PoolBackend, Upstream
from .result import DEFAULT_RETRY_ON
from .resume import NotOurOutput, completed_pairs
from .runner import DEFAULT_CONCURRENCY, DEFAULT_RETRIES, BulkRun
from .wildcards import WildcardDetector
from .writers import WRITERS, Writer

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
FLUSH_INTERVAL = 1.0
# A bulk run rarely asks twice: a small cache serves the repeats that are close together, and
# keeps the memory of a 10-million-name run flat (an answer costs ~2 KB in the cache).
DEFAULT_CACHE_SIZE = 10_000
#: ``--udp-max-queries 0`` for the native backend, which needs a number: never replace a socket.
NEVER_REPLACE = 1 << 62


class UsageError(Exception):
    pass


def add_bulk_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    bulk = commands.add_parser(
        "bulk", help="resolve many names from a file or stdin, with progress, resume and rate limits",
        description="Resolve one name per line (blank lines and # comments skipped, URLs give their host). "
                    "One record per (name, type) is written as JSON lines, CSV or dig-like text.",
    )
    bulk.add_argument("input", nargs="?", default="-", metavar="FILE|-", help="names, one per line (default stdin)")
    bulk.add_argument("-t", "--type", action="append", metavar="TYPES",
                      help="record types, comma-separated and/or repeated (default A)")
    bulk.add_argument("-c", "--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                      help=f"queries in flight at most (default {DEFAULT_CONCURRENCY})")
    bulk.add_argument("--rate", type=float, help="queries per second at most, over all servers")
    bulk.add_argument("--rate-per-server", type=float, metavar="QPS", help="queries per second at most, per server")
    bulk.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                      help=f"retries after a timeout or SERVFAIL (default {DEFAULT_RETRIES})")
    bulk.add_argument("--retry-on", default=",".join(sorted(DEFAULT_RETRY_ON)),
                      help="statuses that are retried (default %(default)s)")
    bulk.add_argument("--timeout", type=float, default=2.0, help="seconds per try, from when it is sent (default 2)")
    bulk.add_argument("-o", "--output", metavar="OUT", help="output file (default stdout)")
    bulk.add_argument("--format", choices=sorted(WRITERS), default="jsonl", help="output format (default jsonl)")
    bulk.add_argument("--resume", action="store_true",
                      help="skip the (name, type) pairs already complete in OUT and append the rest")
    bulk.add_argument("--backends", help="comma-separated chain (default: cares over the nameservers); "
                                         "cares means one c-ares backend per nameserver")
    bulk.add_argument("--nameserver", action="append", default=[], metavar="IP[:PORT]",
                      help="upstream server (repeatable; default resolv.conf's)")
    bulk.add_argument("--resolvers", metavar="FILE", help="file of upstream servers, one per line")
    bulk.add_argument("--no-0x20", dest="dns0x20", action="store_false",
                      help="send query names as given, not in random case (DNS 0x20; a server that does not "
                           "echo the case needs this)")
    bulk.add_argument("--udp-max-queries", type=int, metavar="N",
                      help="queries per UDP socket before a fresh one on a new random port (default: the "
                           "backend's, 4 for cares and 256 for native; 0: one socket for the whole run, as c-ares "
                           "does by default)")
    bulk.add_argument("--port", type=int, default=53, help="port of servers given without one (default 53)")
    bulk.add_argument("--hosts-file", help="hosts file for the hosts backend")
    bulk.add_argument("--root-hint", action="append", default=[], metavar="IP[:PORT]",
                      help="root server for the iterative backend")
    bulk.add_argument("--cache-size", type=int, default=DEFAULT_CACHE_SIZE,
                      help=f"answers kept for repeated names and wildcard probes (default {DEFAULT_CACHE_SIZE})")
    bulk.add_argument("--wildcards", action="store_true", help="detect wildcard zones and mark their answers")
    bulk.add_argument("--drop-wildcards", action="store_true", help="detect wildcard answers and leave them out")
    bulk.add_argument("--stats-file", metavar="F", help="append a JSON line of counters every --stats-interval s")
    bulk.add_argument("--stats-interval", type=float, default=5.0, help="seconds between stats lines (default 5)")
    bulk.add_argument("--workers", type=int, default=1, metavar="N",
                      help="worker processes, each with its own event loop and servers' share of -c and --rate "
                           "(default 1: this process)")
    bulk.add_argument("--worker-mode", action="store_true", help=argparse.SUPPRESS)
    bar = bulk.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="draw the progress bar even when stderr is not a terminal")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never draw the progress bar")
    return bulk


def _types(args: argparse.Namespace) -> list[str]:
    types: list[str] = []
    for group in args.type or ["A"]:
        for text in group.split(","):
            if text.strip():
                try:
                    rdtype = normalize_rdtype(text.strip())
                except InvalidQuery as exc:
                    raise UsageError(str(exc)) from None
                if rdtype not in types:
                    types.append(rdtype)
    if not types:
        raise UsageError("no record type given")
    return types


def _servers(args: argparse.Namespace) -> list[str]:
    servers = list(args.nameserver)
    if args.resolvers:
        try:
            with open(args.resolvers, encoding="utf-8") as handle:
                servers += [s for s in (line.split("#", 1)[0].strip() for line in handle) if s]
        except OSError as exc:
            raise UsageError(f"cannot read --resolvers file: {exc}") from None
    if not servers:
        from ..backends.cares import read_resolv_conf

        servers = read_resolv_conf()
    from ..cli import UsageError as ServerSyntaxError
    from ..cli import parse_server

    addresses = []
    for text in servers:
        try:
            host, port = parse_server(text, args.port)
            ipaddress.ip_address(host.split("%", 1)[0])
        except (ServerSyntaxError, ValueError):
            raise UsageError(f"a nameserver must be an IP address with an optional port, not {text!r}") from None
        addresses.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return addresses


def _validate(args: argparse.Namespace) -> None:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.rate is not None and not args.rate > 0:
        raise UsageError("--rate must be positive")
    if args.rate_per_server is not None and not args.rate_per_server > 0:
        raise UsageError("--rate-per-server must be positive")
    if args.retries < 0:
        raise UsageError("--retries must not be negative")
    if not args.timeout > 0:
        raise UsageError("--timeout must be positive")
    if args.udp_max_queries is not None and args.udp_max_queries < 0:
        raise UsageError("--udp-max-queries must not be negative")
    if args.cache_size < 0:
        raise UsageError("--cache-size must not be negative")
    if not args.stats_interval > 0:
        raise UsageError("--stats-interval must be positive")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.resume and not args.output:
        raise UsageError("--resume needs -o OUT (the file an earlier run wrote)")
    if args.input != "-" and not os.path.isfile(args.input):
        raise UsageError(f"no such input file: {args.input}")


def _native_for(args: argparse.Namespace) -> Callable[[str, float], Backend]:
    """A one-server ``NativeBackend`` per upstream of a pool, with the run's settings."""
    from ..backends.native import NativeBackend

    per_socket = args.udp_max_queries
    if per_socket == 0:  # one socket for the whole run
        per_socket = NEVER_REPLACE

    def factory(address: str, timeout: float) -> Backend:
        options: dict[str, Any] = {} if per_socket is None else {"udp_max_queries": per_socket}
        # One try, as for c-ares: retries belong to the run (another server, a back-off).
        return NativeBackend([address], timeout=timeout, tries=1, use_0x20=args.dns0x20, **options)

    return factory


def _pool(args: argparse.Namespace, servers: list[str], name: str) -> PoolBackend:
    options: dict[str, Any] = {"dns0x20": args.dns0x20}
    if args.udp_max_queries is not None:
        options["udp_max_queries"] = args.udp_max_queries
    if name == "native":
        options = {"backend_factory": _native_for(args)}
    return PoolBackend(servers, rate_per_server=args.rate_per_server, timeout=args.timeout, port=args.port,
                       **options)


def _chain(args: argparse.Namespace, servers: list[str]) -> tuple[list[Backend], list[PoolBackend]]:
    """The backends of the run, and among them the pools of upstream servers."""
    if not args.backends:
        pool = _pool(args, servers, "cares")
        return [pool], [pool]
    from ..cli import BACKEND_FACTORIES

    args.trace_callback = None
    chain: list[Backend] = []
    pools: list[PoolBackend] = []
    for name in (n.strip() for n in args.backends.split(",")):
        if name in ("cares", "pool", "native"):
            try:
                pool = _pool(args, servers, name)
            except ImportError as exc:
                raise UsageError(f"backend {name!r} is not available: {exc}") from None
            chain.append(pool)
            pools.append(pool)
            continue
        factory = BACKEND_FACTORIES.get(name)
        if factory is None:
            raise UsageError(f"unknown backend {name!r} (choose from cares, {', '.join(BACKEND_FACTORIES)})")
        try:
            chain.append(factory(args))
        except ImportError as exc:
            raise UsageError(f"backend {name!r} is not available: {exc}") from None
    return chain, pools


def build_run(args: argparse.Namespace, servers: list[str], names: Any, types: list[str],
              skip: set[tuple[str, str]] | None = None) -> tuple[list[PoolBackend], BulkRun]:
    """The pools of upstream servers, chain, resolver and ``BulkRun`` of one process (a plain
    run or a ``--workers`` worker)."""
    chain, pools = _chain(args, servers)
    resolver = Resolver(chain, timeout=args.timeout, cache=TTLCache(args.cache_size) if args.cache_size else None)
    detector = WildcardDetector(resolver) if (args.wildcards or args.drop_wildcards) else None
    run = BulkRun(resolver, names, types, concurrency=args.concurrency, rate=args.rate, retries=args.retries,
                  timeout=args.timeout, retry_on={s.strip().upper() for s in args.retry_on.split(",") if s.strip()},
                  skip=skip or None, wildcards=detector)
    return pools, run


def main(args: argparse.Namespace) -> int:
    try:
        _validate(args)
        types = _types(args)
        servers = _servers(args)
    except UsageError as exc:
        print(f"asyncresolve bulk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_bulk(args, types, servers))
    except UsageError as exc:
        print(f"asyncresolve bulk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _open_output(path: str, resume: bool) -> tuple[bool, IO[str]]:
    """(whether the file starts empty, the file open for writing): appended to with ``resume``."""
    fresh = not (resume and os.path.exists(path) and os.path.getsize(path) > 0)
    return fresh, open(path, "a" if resume else "w", encoding="utf-8")  # closed by _bulk


async def open_output(args: argparse.Namespace) -> tuple[set[tuple[str, str]] | None, IO[str], Writer]:
    """What ``--resume`` skips (pairs already complete in OUT, or None), the output stream and
    its writer: the same for a plain run and for the parent of ``--workers``."""
    skip = None
    if args.resume:
        try:
            skip = await asyncio.to_thread(completed_pairs, args.output, args.format)
        except NotOurOutput as exc:
            raise UsageError(f"cannot --resume: {exc} (check --format)") from None
    out: IO[str]
    if args.output:
        fresh, out = await asyncio.to_thread(_open_output, args.output, args.resume)
    else:
        fresh, out = True, sys.stdout
    return skip, out, WRITERS[args.format](out, fresh=fresh)


async def _bulk(args: argparse.Namespace, types: list[str], servers: list[str]) -> int:
    from .progress import Progress

    loop = asyncio.get_running_loop()
    show_bar = sys.stderr.isatty() if args.progress is None else args.progress
    if args.workers > 1 and not args.worker_mode:
        from .workers import run_parent

        return await run_parent(args, types, servers)
    if args.worker_mode:
        from .workers import run_worker

        return await run_worker(args, types, servers)
    skip, out, writer = await open_output(args)
    names: Any = read_stream() if args.input == "-" else read_names(args.input)
    pools, run = build_run(args, servers, names, types, skip)
    resolver = run.resolver
    progress = Progress(run, bar=show_bar, stream=sys.stderr, stats_file=args.stats_file,
                        stats_interval=args.stats_interval)

    def on_disable(upstream: Upstream, reason: str) -> None:
        progress.warn(f"no longer sending to {upstream.address}: {reason}")

    for pool in pools:
        pool.on_disable = on_disable
    main_task = asyncio.current_task()
    stopped_by = 0

    def on_signal(signum: int) -> None:
        nonlocal stopped_by
        if stopped_by and main_task is not None:
            main_task.cancel()  # a second signal: stop at once
        stopped_by = signum
        run.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    background: list[asyncio.Task[Any]] = [loop.create_task(_flush_every(writer, FLUSH_INTERVAL))]
    if args.input != "-":
        counting = loop.create_task(asyncio.to_thread(count_names, args.input))
        counting.add_done_callback(
            lambda t: progress.set_total(t.result() * len(types)) if not t.cancelled() and not t.exception() else None)
        background.append(counting)
    progress.start()
    drop = args.drop_wildcards
    broken_pipe = False
    try:
        async for result in run.results():
            if drop and result.wildcard:
                continue
            try:
                writer.write(result)
            except BrokenPipeError:  # `asyncresolve bulk ... | head`: the reader has gone
                broken_pipe = True
                run.stop()
                # Python would complain again when it flushes stdout at exit.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except asyncio.CancelledError:
        if not stopped_by:
            raise
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        with contextlib.suppress(OSError, ValueError):
            writer.flush()  # every result completed so far is on disk before we report
        if out is not sys.stdout:
            out.close()
        await progress.stop()
        await resolver.aclose()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if broken_pipe:
        return 128 + signal.SIGPIPE
    print(progress.summary(args.output), file=sys.stderr, flush=True)
    if stopped_by:
        return report_stop(stopped_by, args, writer)
    return EXIT_OK


def report_stop(signum: int, args: argparse.Namespace, writer: Writer) -> int:
    """Say which signal stopped the run and how to finish it; the exit status (128 + signal)."""
    if args.output:
        hint = (f"run the same command with --resume to finish: the {writer.written} results written are kept "
                "and the rest is resolved")
    else:
        hint = "write to a file with -o OUT to be able to --resume an interrupted run"
    print(f"asyncresolve bulk: stopped by {signal.Signals(signum).name}; {hint}", file=sys.stderr, flush=True)
    return 128 + signum


async def _flush_every(writer: Any, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        writer.flush()
