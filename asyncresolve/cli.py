"""The ``asyncresolve`` command: ``lookup`` names, run the offline ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .answer import Answer
from .backends.base import Backend
from .errors import (
    InvalidName,
    InvalidQuery,
    NoAnswer,
    NXDomain,
    ResolveError,
    ResolveTimeout,
    ServFail,
)
from .names import normalize_name, normalize_rdtype, validate_timeout
from .resolver import Resolver

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NXDOMAIN, EXIT_NODATA, EXIT_TIMEOUT, EXIT_SERVFAIL = 0, 1, 2, 3, 4, 5, 6
_EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (NXDomain, EXIT_NXDOMAIN), (NoAnswer, EXIT_NODATA), (ResolveTimeout, EXIT_TIMEOUT),
    (ServFail, EXIT_SERVFAIL), (InvalidName, EXIT_USAGE), (InvalidQuery, EXIT_USAGE),
]


class UsageError(Exception):
    pass


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """``"127.0.0.1"``, ``"127.0.0.1:5353"``, ``"[::1]:5353"`` or ``"::1"`` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise UsageError(f"bad port in server {text[:80]!r}") from None
    if not host or not 0 < number < 65536:
        raise UsageError(f"bad server {text[:80]!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"a server must be an IP address (port optional), not {text[:80]!r}") from None
    return host, number


def _make_hosts(args: argparse.Namespace) -> Backend:
    from .backends.hosts import DEFAULT_HOSTS_PATH, HostsBackend

    return HostsBackend(args.hosts_file or DEFAULT_HOSTS_PATH)


def _make_system(args: argparse.Namespace) -> Backend:
    from .backends.system import SystemBackend

    return SystemBackend()


def _make_cares(args: argparse.Namespace) -> Backend:
    from .backends.cares import CaresBackend

    port = args.port or 53
    servers = [f"{h}:{p}" for h, p in (parse_server(s, port) for s in args.nameserver)] or None
    return CaresBackend(nameservers=servers, port=port, timeout=args.timeout)


def _make_native(args: argparse.Namespace) -> Backend:
    from .backends.native import NativeBackend

    port = args.port or 53
    servers = [parse_server(s, port) for s in args.nameserver] or None
    return NativeBackend(nameservers=servers, port=port)


def _make_iterative(args: argparse.Namespace) -> Backend:
    from .backends.iterative import IterativeBackend

    port = args.port or 53
    hints = [parse_server(s, port) for s in args.root_hint] or None
    return IterativeBackend(root_hints=hints, port=port, trace=args.trace_callback)


BACKEND_FACTORIES: dict[str, Callable[[argparse.Namespace], Backend]] = {
    "hosts": _make_hosts,
    "system": _make_system,
    "cares": _make_cares,
    "native": _make_native,
    "iterative": _make_iterative,
}


#: Options that configure backends: (option, attribute, the backends it configures). Without
#: ``--backends`` they choose the chain (the backends they configure, in BACKEND_FACTORIES'
#: order); with ``--backends`` one of the backends they configure must be in it. An option
#: never goes silently unused.
BACKEND_OPTIONS: list[tuple[str, str, tuple[str, ...]]] = [
    ("--hosts-file", "hosts_file", ("hosts",)),
    ("--nameserver", "nameserver", ("cares", "native")),
    ("--root-hint", "root_hint", ("iterative",)),
    ("--trace", "trace", ("iterative",)),
    ("--port", "port", ("cares", "native", "iterative")),
]


def chain_names(args: argparse.Namespace) -> list[str] | None:
    """The backend names of the chain the options ask for; None for the default chain."""
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, not {args.port}")
    given = [(option, users) for option, attribute, users in BACKEND_OPTIONS
             if getattr(args, attribute, None) not in (None, [], False)]
    if args.backends:
        names = [n.strip() for n in args.backends.split(",")]
        for name in names:
            if name not in BACKEND_FACTORIES:
                raise UsageError(f"unknown backend {name!r} (choose from {', '.join(BACKEND_FACTORIES)})")
        for option, users in given:
            if not any(user in names for user in users):
                raise UsageError(f"{option} configures the {' or '.join(users)} backend, "
                                 f"which --backends {args.backends} does not include")
        return names
    if not given:
        return None
    wanted = {user for option, users in given if option != "--port" for user in users}
    if not wanted:
        raise UsageError("--port applies to the servers of --nameserver or --root-hint, or to "
                         "--backends cares/iterative: give one of them")
    if any(option == "--port" for option, _ in given) and not wanted & {"cares", "iterative"}:
        raise UsageError("--port applies to --nameserver or --root-hint servers given without a port")
    return [name for name in BACKEND_FACTORIES if name in wanted]


def build_backends(args: argparse.Namespace) -> list[Backend] | None:
    names = chain_names(args)
    if names is None:
        return None
    backends = []
    for name in names:
        factory = BACKEND_FACTORIES[name]
        try:
            backends.append(factory(args))
        except ImportError as exc:
            raise UsageError(f"backend {name!r} is not available: {exc}") from None
        except (ValueError, OSError) as exc:
            raise UsageError(f"backend {name!r}: {str(exc)[:200]}") from None
    return backends


def format_answer(answer: Answer, elapsed: float) -> str:
    lines = [f";; {answer.name} {answer.rdtype}: {len(answer)} record(s), source {answer.source}, "
             f"ttl {answer.ttl}, {elapsed * 1000:.1f} ms"]
    lines.extend(str(r) for r in answer.cname_chain)
    lines.extend(str(r) for r in answer.records)
    return "\n".join(lines)


def exit_code_for(error: BaseException) -> int:
    for cls, code in _EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_ERROR


async def lookup(args: argparse.Namespace) -> int:
    try:
        name = normalize_name(args.name)
        types = [normalize_rdtype(t) for t in (args.type or ["A"])]
        validate_timeout(args.timeout)
    except (InvalidName, InvalidQuery) as exc:
        raise UsageError(str(exc)) from None
    if name == "." and {"A", "AAAA", "PTR"} & set(types):
        raise UsageError("the root '.' is not a host name: ask it for NS or SOA (-t NS)")
    trace: list[str] = []
    args.trace_callback = trace.append if args.trace else None
    backends = build_backends(args)
    status = EXIT_OK
    results: list[dict[str, Any]] = []
    async with Resolver(backends, timeout=args.timeout) as resolver:
        for rdtype in types:
            started = time.perf_counter()
            try:
                answer = await resolver.resolve(name, rdtype)
            except ResolveError as error:
                code = exit_code_for(error)
                status = status or code
                results.append({"name": name, "type": rdtype, "error": type(error).__name__,
                                "message": str(error), "ttl": getattr(error, "ttl", None)})
                if not args.json:
                    print(f"asyncresolve: {error}", file=sys.stderr)
            else:
                elapsed = time.perf_counter() - started
                results.append(answer.to_dict())
                if not args.json:
                    print(format_answer(answer, elapsed))
            if trace and not args.json:
                print("\n".join(f";; trace: {step}" for step in trace))
            if trace:
                results[-1]["trace"] = [str(step) for step in trace]
                trace.clear()
    if args.json:
        print(json.dumps(results, indent=2))  # one list, one object per type, whatever their number
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asyncresolve", description="asyncio DNS resolver")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    look = commands.add_parser("lookup", help="resolve a name and print its records with TTL and source")
    look.add_argument("name")
    look.add_argument("-t", "--type", action="append", help="record type (repeatable; default A)")
    look.add_argument("--backends", help=f"comma-separated chain, from: {', '.join(BACKEND_FACTORIES)}")
    look.add_argument("--json", action="store_true", help="print JSON instead of dig-style lines")
    look.add_argument("--timeout", type=float, default=5.0, help="overall deadline in seconds (default 5)")
    look.add_argument("--hosts-file", help="hosts file for the hosts backend (default the OS's)")
    look.add_argument("--nameserver", action="append", default=[], metavar="IP[:PORT]",
                      help="server for the cares backend (repeatable; default resolv.conf)")
    look.add_argument("--root-hint", action="append", default=[], metavar="IP[:PORT]",
                      help="root server for the iterative backend (repeatable; default IANA's)")
    look.add_argument("--port", type=int, help="port of --nameserver/--root-hint servers given without one "
                      "(default 53)")
    look.add_argument("--trace", action="store_true", help="print each step of an iterative resolution "
                      "(the iterative backend)")

    from .bulk.cli import add_bulk_parser

    add_bulk_parser(commands)

    demo = commands.add_parser("demo", help="offline demo against a built-in lab on loopback")
    demo.add_argument("--quick", action="store_true", help="skip the slower parts")
    return parser


#: The collector's thresholds of a bulk process (CPython's defaults: 700, 10, 10).
BULK_GC_THRESHOLDS = (50_000, 20, 100)


def collect_garbage_less_often() -> None:
    """Tune the garbage collector of a process that does nothing but bulk resolution.

    A bulk run keeps thousands of lookups in flight and a large cache; with CPython's default
    thresholds the youngest generation is collected every hundred names or so and each
    collection walks every lookup in flight: about a fifth of the CPU time of a miss in
    ``benchmarks`` measurements. Almost everything a lookup allocates is freed by reference
    counting, so collecting less often costs little memory. The ``bulk`` command owns its
    process and does this; the library never changes a setting of the interpreter by itself.
    """
    gc.freeze()  # what is alive now (modules, the parser) is never garbage: stop walking it
    gc.set_threshold(*BULK_GC_THRESHOLDS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "lookup":
            return asyncio.run(lookup(args))
        if args.command == "bulk":
            from .bulk.cli import main as bulk_main

            collect_garbage_less_often()
            return bulk_main(args)
        if args.command == "demo":
            from .demo import run_demo

            return asyncio.run(run_demo(quick=args.quick))
    except UsageError as exc:
        print(f"asyncresolve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
