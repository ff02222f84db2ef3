"""Where the miss path's time goes: the full ``Resolver`` over a backend against the backend alone.

Cold A lookups of distinct names against a flat NSD on loopback, under pyinstrument
(statistical, ~1 ms interval), once through ``Resolver([backend])`` and once through
``backend.resolve`` alone (``--backend cares``, the default, or ``native``); prints both
profiles and the throughput of each run.
Run: ``python benchmarks/profile_miss.py [--backend native] [--names N] [--concurrency C] [--html DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.contenders import cares_backend_alone, native_backend_alone, resolver_cares, resolver_native
from benchmarks.harness import run_pass
from benchmarks.servers import ORIGIN, cold_names, expected_address, flat_zone


async def profile(label: str, opener, server, names, concurrency, html: Path | None) -> None:  # type: ignore[no-untyped-def]
    from pyinstrument import Profiler

    async with opener(server) as lookup:
        await run_pass(names[:1000], expected_address, concurrency, lookup, 30)
    async with opener(server) as lookup:
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        result = await run_pass(names, expected_address, concurrency, lookup, 120)
        profiler.stop()
    print(f"\n===== {label}: {result.qps:,.0f} qps (under the profiler), ok {result.success:.1%}")
    print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False))
    if html:
        html.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - after the profiled run
        (html / f"{label}.html").write_text(profiler.output_html())


async def main(args: argparse.Namespace) -> None:
    from asyncresolve.testing.peers import NSD

    names = cold_names(args.names)
    with NSD({ORIGIN: flat_zone(args.names)}, port=None) as nsd:
        server = (nsd.address, nsd.port)
        resolver, alone = OPENERS[args.backend]
        await profile(f"resolver-{args.backend}", resolver, server, names, args.concurrency, args.html)
        await profile(f"backend-{args.backend}", alone, server, names, args.concurrency, args.html)


OPENERS = {"cares": (resolver_cares, cares_backend_alone), "native": (resolver_native, native_backend_alone)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--backend", choices=sorted(OPENERS), default="cares")
    parser.add_argument("--names", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--html", type=Path)
    asyncio.run(main(parser.parse_args()))
