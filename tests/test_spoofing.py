"""Off-path spoofing (RFC 5452) against each DNS backend while it waits on a slow lab server.

A bounded flood: 20 lookups x 400 forged answers (8,000 packets) per run. The attacker
sends from the server's own address and port and knows, by mode: the ports of earlier
queries ("guess"), the exact port ("port"), or the port and the ID ("port+id"). The
accepted count is printed (``-s``) and must be 0 for the recommended (default) settings;
the unhardened settings are run too, as the control that shows the attack lands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncresolve.backends.base import Backend, Query
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.backends.iterative import IterativeBackend
from asyncresolve.cache import TTLCache
from asyncresolve.resolver import Resolver
from asyncresolve.testing import DNSLab
from asyncresolve.testing.spoof import FORGED_ADDRESS, Spoofer

LOOKUPS = 20
PER_QUERY = 400
ZONE = "\n".join(f"h{i}-abcdefghij 300 IN A 192.0.2.{i % 250}" for i in range(2_000)) + "\n"
ORIGIN = "spoofme.test."

HARDENED: dict[str, dict[str, Any]] = {"cares": {}, "iterative": {}}  # the defaults
UNHARDENED: dict[str, dict[str, Any]] = {
    "cares": {"dns0x20": False, "udp_max_queries": 0},
    "iterative": {"use_0x20": False},
}


def make_backend(kind: str, lab: DNSLab, options: dict[str, Any]) -> Backend:
    if kind == "cares":
        server = lab.server_for(ORIGIN)
        return CaresBackend([server.address], timeout=2.0, tries=1, **options)
    return IterativeBackend(root_hints=lab.root_hints, port=lab.port, initial_timeout=2.0, **options)


@contextlib.asynccontextmanager
async def slow_lab() -> AsyncIterator[DNSLab]:
    async with DNSLab({ORIGIN: ZONE}) as lab:
        yield lab


async def run_attack(kind: str, options: dict[str, Any], mode: str, start: int = 0) -> tuple[int, int, int]:
    """(accepted forgeries, forged packets sent, distinct ports seen) for one run."""
    async with slow_lab() as lab:
        backend = make_backend(kind, lab, options)
        resolver = Resolver(backends=[backend], cache=TTLCache())
        server = lab.server_for(ORIGIN)
        try:
            if kind == "iterative":  # learn the delegation first: only the leaf is attacked
                await resolver.resolve(f"h1999-abcdefghij.{ORIGIN}", "A", timeout=5)
            server.faults.delay = 0.25  # the slow server: the forgeries arrive first
            spoofer = Spoofer(server, mode=mode, per_query=PER_QUERY)
            spoofer.attach()
            answers = await asyncio.gather(*(
                resolver.resolve(f"h{i}-abcdefghij.{ORIGIN}", "A", timeout=5)
                for i in range(start, start + LOOKUPS)
            ), return_exceptions=True)
            spoofer.detach()
            accepted = sum(
                1 for answer in answers if not isinstance(answer, BaseException)
                and any(getattr(r, "address", None) == FORGED_ADDRESS for r in answer.records)
            )
            assert sum(1 for answer in answers if isinstance(answer, BaseException)) <= LOOKUPS // 4
            return accepted, spoofer.sent, len(spoofer.ports_seen)
        finally:
            await resolver.aclose()


@pytest.mark.parametrize("mode", ["guess", "port", "port+id"])
@pytest.mark.parametrize("kind", ["cares", "iterative"])
async def test_no_forged_answer_accepted_with_recommended_settings(kind: str, mode: str) -> None:
    accepted, sent, ports = await run_attack(kind, HARDENED[kind], mode)
    print(f"\n{kind} (defaults) mode={mode}: {accepted}/{LOOKUPS} lookups poisoned by {sent} forgeries, "
          f"{ports} source ports")
    assert sent >= LOOKUPS * PER_QUERY
    assert accepted == 0


@pytest.mark.parametrize("kind", ["cares", "iterative"])
async def test_control_unhardened_settings_are_poisoned(kind: str) -> None:
    """Without 0x20 an attacker who knows port and ID wins: the harness does land forgeries."""
    accepted, sent, _ = await run_attack(kind, UNHARDENED[kind], "port+id")
    print(f"\n{kind} (no 0x20) mode=port+id: {accepted}/{LOOKUPS} lookups poisoned by {sent} forgeries")
    assert accepted >= LOOKUPS // 2


async def distinct_ports(kind: str, count: int) -> int:
    async with DNSLab({ORIGIN: ZONE}) as lab:
        server = lab.server_for(ORIGIN)
        backend = make_backend(kind, lab, {})
        ports: set[int] = set()
        server.on_udp_query = lambda wire, addr: ports.add(addr[1])
        loop = asyncio.get_running_loop()
        try:
            sem = asyncio.Semaphore(50)

            async def one(i: int) -> None:
                async with sem:
                    with contextlib.suppress(Exception):
                        await backend.resolve(Query(f"h{i % 2000}-abcdefghij.{ORIGIN}", "A", loop.time() + 10))

            await asyncio.gather(*(one(i) for i in range(count)))
        finally:
            await backend.aclose()
        return len(ports)


@pytest.mark.parametrize("kind", ["cares", "iterative"])
async def test_source_ports_spread(kind: str) -> None:
    count = 3_000  # benchmarks/spoof.py reports 10,000
    ports = await distinct_ports(kind, count)
    print(f"\n{kind}: {ports} distinct source ports over {count} queries")
    # c-ares: a new socket every 4 queries by default (its own default kept one); iterative: one each
    assert ports >= count * (0.2 if kind == "cares" else 0.8)
