"""One command for every benchmark: ``python -m benchmarks [--quick]`` (root: port 53, a mount namespace).

It starts its own servers on loopback (NSD serving a flat zone of distinct names on a random
``127.x.y.100`` port 53, an NSD hierarchy and unbound for the iterative scenario, dnsperf as
the C ceiling), runs every scenario for every contender in the same run (rounds interleaved,
medians and spread), prints the table and writes ``benchmarks/results/<stem>.json`` and
``<stem>-*.png``. The whole run happens in a private mount namespace whose
``/etc/resolv.conf`` names the benchmark's NSD: contenders that go through the OS
(``getaddrinfo`` in threads, aiohttp's resolvers, asyncresolve's system backend and default
chain) query the same server as the others, and no query can leave the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from . import report
from .contenders import by_label
from .harness import say
from .scenarios import ASYNC_SCENARIOS, Context, iterative_scenario
from .servers import ORIGIN, dnsperf_available, flat_zone

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NAMESPACE_FLAG = "ASYNCRESOLVE_BENCH_IN_NAMESPACE"
SCENARIOS = ("cold", "cache", "coalesce", "iterative", "bulk", "memory")
PROFILES: dict[str, dict[str, Any]] = {
    # about 10 minutes on 2 shared cores
    "default": {"names": 20_000, "levels": [10, 100, 500, 2000], "rounds": 3, "pass_limit": 3.5,
                "hits": 300_000, "coalesce": 10_000, "bulk_names": 100_000, "memory_names": 20_000,
                "iterative_names": 5_000, "iterative_rounds": 2},
    # about 2 minutes
    "quick": {"names": 5_000, "levels": [10, 500], "rounds": 2, "pass_limit": 2.0,
              "hits": 100_000, "coalesce": 10_000, "bulk_names": 20_000, "memory_names": 5_000,
              "iterative_names": 1_000, "iterative_rounds": 1},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the 2-minute profile (fewer names, rounds, levels)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run these scenarios only")
    parser.add_argument("--contenders", nargs="+", metavar="LABEL", help="cold-lookup contenders (labels)")
    parser.add_argument("--loops", nargs="+", default=["asyncio", "uvloop"], choices=["asyncio", "uvloop"])
    parser.add_argument("--names", type=int, help="distinct names per cold pass")
    parser.add_argument("--levels", type=int, nargs="+", help="concurrency levels of the cold scenario")
    parser.add_argument("--headline", type=int, default=500, help="concurrency of the table (and of uvloop's run)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--pass-limit", type=float, help="seconds per pass before it is cut")
    parser.add_argument("--via", choices=["nsd", "unbound"], default="nsd",
                        help="server of the cold, cache and bulk scenarios: NSD itself (default) or unbound "
                             "with NSD's zone as a stub zone, its cache warmed with every name first")
    parser.add_argument("--stem", help="file name stem under benchmarks/results (default: the date)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    profile = PROFILES["quick" if args.quick else "default"]
    for key, value in profile.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.headline not in args.levels:
        args.levels = sorted({*args.levels, args.headline})
    args.only = list(args.only or SCENARIOS)
    return args


def main(argv: list[str] | None = None) -> int:
    if os.environ.get(NAMESPACE_FLAG) == "1":
        return run(parse_args(argv))
    args = parse_args(argv)  # errors and --help before anything starts
    if os.geteuid() != 0:
        print("the benchmark needs root: its servers use port 53 and it runs in a private mount namespace",
              file=sys.stderr)
        return 2
    from asyncresolve.testing.peers import port_is_free, random_loopback_block

    for _ in range(64):
        block = random_loopback_block()
        if port_is_free(f"{block}100", 53) and port_is_free(f"{block}53", 53):
            break
    nameserver = f"{block}53" if args.via == "unbound" else f"{block}100"
    with tempfile.NamedTemporaryFile("w", prefix="bench-resolv-", suffix=".conf", delete=False) as conf:
        conf.write(f"nameserver {nameserver}\noptions timeout:1 attempts:3\n")
    env = {**os.environ, NAMESPACE_FLAG: "1", "ASYNCRESOLVE_BENCH_BLOCK": block,
           "ASYNCRESOLVE_BENCH_RESOLV_CONF": conf.name,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    inner = 'mount --bind "$ASYNCRESOLVE_BENCH_RESOLV_CONF" /etc/resolv.conf && exec "$0" -m benchmarks "$@"'
    argv = sys.argv[1:] if argv is None else argv
    try:
        return subprocess.call(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner,
                                sys.executable, *argv], env=env, cwd=HERE.parent)
    finally:
        os.unlink(conf.name)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("asyncresolve", "pycares", "aiodns", "dnspython", "aiohttp", "uvloop", "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    for tool, flag in (("nsd", "-v"), ("unbound", "-V"), ("dnsperf", "-h")):
        path = shutil.which(tool) or shutil.which(f"/usr/sbin/{tool}")
        if not path:
            continue
        run = subprocess.run([path, flag], capture_output=True, text=True, check=False)
        text = (run.stdout + run.stderr).strip().splitlines()
        out[tool] = next((line.strip() for line in text if "ersion" in line), text[0] if text else "?")
    return out


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE.parent, check=False).stdout.strip()
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(), "commit": commit,
            "load_average_at_start": os.getloadavg()}


@contextlib.contextmanager
def warm_unbound(block: str, nsd: tuple[str, int], names: int) -> Iterator[tuple[str, int]]:
    """unbound on ``{block}53``, NSD's zone as a stub zone, every name already in its cache."""
    from asyncresolve.testing.peers import Unbound

    from .contenders import raw_pycares
    from .harness import run_pass
    from .servers import cold_names, expected_address

    config = ["msg-cache-size: 128m", "rrset-cache-size: 256m",
              "stub-zone:", f"    name: {ORIGIN}", f"    stub-addr: {nsd[0]}@{nsd[1]}"]
    with Unbound(root_hints=[nsd[0]], address=f"{block}53", port=53, extra_server_config=config) as unbound:
        server = (unbound.address, unbound.port)

        async def warm() -> Any:
            async with raw_pycares(server) as lookup:
                return await run_pass(cold_names(names), expected_address, 200, lookup, 300.0)

        result = asyncio.run(warm())
        say(f"unbound on {server[0]}:{server[1]}: cache warmed with {result.ok:,} of {names:,} names "
            f"({result.qps:,.0f} qps cold)")
        yield server


def _loop_factory(name: str) -> Any:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run(args: argparse.Namespace) -> int:
    from asyncresolve.testing.peers import NSD

    started = time.monotonic()
    block = os.environ["ASYNCRESOLVE_BENCH_BLOCK"]
    zone_size = max(args.names, args.memory_names, args.bulk_names if "bulk" in args.only else 0)
    result: dict[str, Any] = {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(), "versions": _versions(), "profile": "quick" if args.quick else "default",
        "headline_concurrency": args.headline, "via": args.via,
        "settings": {key: getattr(args, key) for key in (*PROFILES["default"], "loops", "only")},
        "loops": {},
    }
    say(f"asyncresolve benchmarks ({result['profile']}): {result['machine']['cores']} cores, "
        f"{result['machine']['cpu']}, load {result['machine']['load_average_at_start']}")
    if not dnsperf_available():
        say("note: dnsperf not installed (apt-get install dnsperf): no C ceiling in this run")
    contenders = by_label(args.contenders)
    with contextlib.ExitStack() as servers:
        nsd = servers.enter_context(NSD({ORIGIN: flat_zone(zone_size)}, address=f"{block}100", port=53))
        server = (nsd.address, nsd.port)
        say(f"NSD: {zone_size:,} names of {ORIGIN} on {server[0]}:{server[1]}")
        if args.via == "unbound":
            server = servers.enter_context(warm_unbound(block, server, zone_size))
        say(f"server of the contenders (and of this namespace's /etc/resolv.conf): {server[0]}:{server[1]}")
        for loop_name in args.loops:
            first = loop_name == args.loops[0]
            ctx = Context(
                server=server, loop_name=loop_name, rounds=args.rounds, names=args.names,
                levels=args.levels if first else [args.headline], pass_limit=args.pass_limit,
                contenders=contenders, hits=args.hits, coalesce=args.coalesce,
                bulk_names=args.bulk_names, memory_names=args.memory_names,
            )
            wanted = [s for s in ASYNC_SCENARIOS if s in args.only and (first or s in ("cold", "cache", "coalesce"))]

            async def scenarios(ctx: Context = ctx, wanted: list[str] = wanted) -> dict[str, Any]:
                return {name: await ASYNC_SCENARIOS[name](ctx) for name in wanted}

            with asyncio.Runner(loop_factory=_loop_factory(loop_name)) as runner:
                result["loops"][loop_name] = runner.run(scenarios())
    if "iterative" in args.only:
        try:
            result["iterative"] = iterative_scenario(
                [(name, _loop_factory(name)) for name in args.loops], args.iterative_rounds,
                args.iterative_names, 200, 120.0)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal: the other scenarios' figures stand
            say(f"(4) iterative failed: {type(exc).__name__}: {exc}")
            result["iterative"] = {"error": f"{type(exc).__name__}: {exc}"}
    result["elapsed_s"] = time.monotonic() - started
    result["machine"]["load_average_at_end"] = os.getloadavg()

    stem = args.stem or datetime.date.today().isoformat() + ("-quick" if args.quick else "")
    json_path = args.out / f"{stem}.json"
    report.write_json(result, json_path)
    table = report.cold_table(result, args.headline)
    if table.count("\n") > 1:
        say("\n" + table)
    say("\n" + report.other_tables(result))
    say("")
    for line in report.summary_lines(result, args.headline):
        say(line)
    if not args.no_plots:
        for path in report.plots(result, args.out, stem):
            say(f"plot: {path}")
    say(f"results: {json_path}  ({result['elapsed_s']:.0f} s)")
    return 0
