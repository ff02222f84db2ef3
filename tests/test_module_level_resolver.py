"""A module-level Resolver shared by tests that each get their own event loop
(pytest-asyncio's function-scoped loops), as services and test suites do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from asyncresolve import Resolver
from asyncresolve.backends import CaresBackend
from asyncresolve.testing import DNSLab

LAB = DNSLab({"shared.test.": "a 300 IN A 192.0.2.11\nb 300 IN A 192.0.2.12\nc 300 IN A 192.0.2.13\n"})
RESOLVER: Resolver | None = None


@pytest.fixture(scope="module", autouse=True)
def shared_resolver() -> Iterator[Resolver]:
    global RESOLVER
    LAB.start_in_thread()
    host, port = LAB.stub_server
    RESOLVER = Resolver([CaresBackend([f"{host}:{port}"])], cache=None)
    try:
        yield RESOLVER
    finally:
        asyncio.run(RESOLVER.aclose())  # from yet another loop: the last channel is retired
        LAB.stop_thread()


@pytest.mark.parametrize(("name", "address"), [("a", "192.0.2.11"), ("b", "192.0.2.12"), ("c", "192.0.2.13")])
async def test_each_test_loop_can_use_the_module_resolver(name: str, address: str) -> None:
    assert RESOLVER is not None
    assert await RESOLVER.resolve_addresses(f"{name}.shared.test") == [address]
