"""A c-ares backend (and a Resolver) outlives the event loop it first ran on, and closing
it while its channel is being made leaves nothing running."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

import pytest

import asyncresolve.backends.cares as cares_module
from asyncresolve import ResolveError, Resolver, ResolverClosed
from asyncresolve.backends import CaresBackend
from asyncresolve.backends.base import Query
from asyncresolve.testing import DNSLab

ZONES = {"loops.test.": "a 300 IN A 192.0.2.1\nb 300 IN A 192.0.2.2\nmx 300 IN MX 10 a\n"}


def query(name: str) -> Query:
    return Query(name, "A", asyncio.get_running_loop().time() + 5)


@pytest.mark.parametrize("mode", ["sockets", "thread"])
def test_backend_works_in_one_asyncio_run_then_another(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    with DNSLab(ZONES) as lab:
        host, port = lab.stub_server
        backend = CaresBackend([f"{host}:{port}"], loop_mode=mode)  # type: ignore[arg-type]

        async def lookup(name: str) -> list[str]:
            return (await backend.resolve(query(name))).addresses

        with caplog.at_level(logging.ERROR):
            assert asyncio.run(lookup("a.loops.test.")) == ["192.0.2.1"]
            assert asyncio.run(lookup("b.loops.test.")) == ["192.0.2.2"]
            assert asyncio.run(lookup("a.loops.test.")) == ["192.0.2.1"]

        async def close() -> None:
            await backend.aclose()

        asyncio.run(close())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_resolver_works_in_one_asyncio_run_then_another() -> None:
    with DNSLab(ZONES) as lab:
        host, port = lab.stub_server
        resolver = Resolver([CaresBackend([f"{host}:{port}"])], cache=None)

        async def lookup(name: str) -> list[str]:
            return await resolver.resolve_addresses(name)

        assert asyncio.run(lookup("a.loops.test")) == ["192.0.2.1"]
        assert asyncio.run(lookup("b.loops.test")) == ["192.0.2.2"]
        asyncio.run(resolver.aclose())


def test_a_whole_chain_works_in_one_asyncio_run_then_another(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from asyncresolve.backends import HostsBackend, SystemBackend

    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.9 pinned.loops.test\n")
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("hosts: files mdns4_minimal dns\n")
    with DNSLab(ZONES) as lab:
        host, port = lab.stub_server
        resolver = Resolver([HostsBackend(hosts), SystemBackend(nsswitch=nsswitch), CaresBackend([f"{host}:{port}"])],
                            cache=None)

        async def lookups() -> list[object]:
            pinned = await resolver.resolve("pinned.loops.test", "A")
            local = await resolver.resolve("localhost", "A")  # the OS's getaddrinfo: /etc/hosts
            mx = await resolver.resolve("mx.loops.test", "MX")
            return [pinned.source, local.source, "127.0.0.1" in local.addresses, mx.source, mx.ttl_known]

        for _ in range(3):
            assert asyncio.run(lookups()) == ["hosts", "system", True, "cares", True]
        asyncio.run(resolver.aclose())


def test_two_running_loops_get_one_clear_error() -> None:
    with DNSLab(ZONES) as lab:
        host, port = lab.stub_server
        backend = CaresBackend([f"{host}:{port}"])
        started, release = threading.Event(), threading.Event()

        async def hold() -> None:
            await backend.resolve(query("a.loops.test."))
            started.set()
            await asyncio.to_thread(release.wait)  # this loop keeps running meanwhile
            await backend.aclose()

        other = threading.Thread(target=asyncio.run, args=(hold(),))
        other.start()
        try:
            assert started.wait(10)

            async def second() -> None:
                with pytest.raises(ResolveError, match="another running event loop"):
                    await backend.resolve(query("b.loops.test."))

            asyncio.run(second())
        finally:
            release.set()
            other.join(10)


async def test_aclose_while_the_channel_is_being_made_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[cares_module._Channel] = []
    entered, proceed = threading.Event(), threading.Event()
    real = CaresBackend._make_channel

    def slow_make(self: CaresBackend, loop: asyncio.AbstractEventLoop) -> cares_module._Channel:
        entered.set()
        proceed.wait(10)
        channel = real(self, loop)
        made.append(channel)
        return channel

    monkeypatch.setattr(CaresBackend, "_make_channel", slow_make)
    backend = CaresBackend(["127.0.0.1:9"])
    lookup = asyncio.ensure_future(backend.resolve(query("a.loops.test.")))
    await asyncio.to_thread(entered.wait, 10)
    closing = asyncio.ensure_future(backend.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()  # aclose waits for the channel being made
    proceed.set()
    await asyncio.wait_for(closing, 10)
    with pytest.raises(ResolverClosed):
        await lookup
    assert len(made) == 1
    assert made[0].closed
    assert made[0].ptr == cares_module.ffi.NULL
    with pytest.raises(ResolverClosed):
        await backend.resolve(query("b.loops.test."))
    assert len(made) == 1  # no channel made after aclose


def test_channel_made_for_a_loop_that_ended_is_destroyed(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[cares_module._Channel] = []
    entered, proceed = threading.Event(), threading.Event()
    real = CaresBackend._make_channel

    def slow_make(self: CaresBackend, loop: asyncio.AbstractEventLoop) -> cares_module._Channel:
        entered.set()
        proceed.wait(10)
        channel = real(self, loop)
        made.append(channel)
        return channel

    monkeypatch.setattr(CaresBackend, "_make_channel", slow_make)
    backend = CaresBackend(["127.0.0.1:9"])

    async def abandon() -> None:
        task = asyncio.ensure_future(backend.resolve(query("a.loops.test.")))
        await asyncio.to_thread(entered.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(abandon())  # ends while the channel is still being made
    proceed.set()
    deadline = time.monotonic() + 10
    while not (made and made[0].closed) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert made
    assert made[0].closed
    assert made[0].ptr == cares_module.ffi.NULL
    gc.collect()
