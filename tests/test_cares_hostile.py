"""The c-ares backend against dishonest replies: nothing forged becomes an answer or a cached
negative answer; source ports and query-name case are randomised (RFC 5452)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from asyncresolve.backends.base import Query
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.cache import TTLCache
from asyncresolve.errors import NegativeAnswer, ServFail
from asyncresolve.resolver import Resolver
from asyncresolve.testing import AuthServer
from asyncresolve.testing.malformed import FORGED

ZONE = """
$TTL 300
@     3600 IN SOA ns1.hostile.test. hostmaster.hostile.test. 1 7200 3600 1209600 120
@     3600 IN NS ns1
ns1        IN A 127.0.0.1
www        IN A 192.0.2.10
alias      IN CNAME www
"""


@pytest.fixture
async def server() -> AsyncIterator[AuthServer]:
    async with AuthServer({"hostile.test.": ZONE}) as srv:
        yield srv


def query(name: str, rdtype: str = "A", timeout: float = 3.0) -> Query:
    return Query(name, rdtype, asyncio.get_running_loop().time() + timeout)


# Every dishonest reply that parses: none may be an answer, none a cacheable NODATA/NXDOMAIN.
REJECTED = [name for name in FORGED if name != "ttl-2^31"]


@pytest.mark.parametrize("forge", REJECTED)
async def test_dishonest_reply_is_an_error_never_cached(server: AuthServer, forge: str) -> None:
    backend = CaresBackend([server.address], timeout=0.5, tries=1)
    resolver = Resolver(backends=[backend], cache=TTLCache())
    try:
        server.faults.forge = forge
        with pytest.raises(ServFail) as caught:
            await resolver.resolve("www.hostile.test.", "A", timeout=3.0)
        assert not isinstance(caught.value, NegativeAnswer)
        server.faults.forge = None
        before = server.query_count
        answer = await resolver.resolve("www.hostile.test.", "A", timeout=3.0)
        assert [r.address for r in answer.records] == ["192.0.2.10"]  # type: ignore[attr-defined]
        assert server.query_count == before + 1  # nothing of the forgery was cached
    finally:
        await resolver.aclose()


async def test_ttl_of_2_31_or_more_reads_as_zero(server: AuthServer) -> None:
    backend = CaresBackend([server.address], timeout=0.5, tries=1)
    try:
        server.faults.forge = "ttl-2^31"
        answer = await backend.resolve(query("www.hostile.test."))
        assert answer.ttl == 0
        assert answer.records[0].ttl == 0
    finally:
        await backend.aclose()


async def test_cname_chain_still_followed(server: AuthServer) -> None:
    backend = CaresBackend([server.address])
    try:
        answer = await backend.resolve(query("alias.hostile.test."))
        assert answer.canonical_name == "www.hostile.test."
        assert [r.address for r in answer.records] == ["192.0.2.10"]  # type: ignore[attr-defined]
    finally:
        await backend.aclose()


async def test_query_names_are_mixed_case_and_ports_change(server: AuthServer) -> None:
    """0x20 and a fresh source port every few queries are on by default."""
    ports: set[int] = set()
    names: list[str] = []

    def observe(wire: bytes, addr: tuple[str, int]) -> None:
        ports.add(addr[1])
        names.append(wire[12:].split(b"\x07hostile")[0].decode("ascii", "replace"))

    server.on_udp_query = observe
    backend = CaresBackend([server.address])
    try:
        for i in range(40):
            await asyncio.gather(*(
                _ignore(backend.resolve(query(f"www{i}-{j}-abcdefghijkl.hostile.test.")))
                for j in range(5)
            ))
    finally:
        await backend.aclose()
    assert len(names) == 200
    mixed = [n for n in names if n != n.lower()]
    assert len(mixed) >= 190  # 12+ letters each: all-lower-case by chance is 1 in 4,096
    assert len(ports) >= 40  # a new socket every 4 queries; c-ares's own default used one


async def _ignore(coro: object) -> None:
    with contextlib.suppress(Exception):
        await coro  # type: ignore[misc]
