"""The OS backend against the real getaddrinfo, for names the hosts file answers.

The test command runs in a private mount namespace whose resolv.conf points at loopback,
so a name outside the hosts file can be asked too: the failure stays on this machine.
"""

import asyncio
import threading

import pytest

from asyncresolve import NXDomain, Resolver, ServFail
from asyncresolve.backends import SystemBackend
from asyncresolve.backends.base import Query


async def test_localhost_through_getaddrinfo():
    async with Resolver([SystemBackend()]) as r:
        answer = await r.resolve("localhost", "A")
        assert answer.source == "system"
        assert "127.0.0.1" in [rec.address for rec in answer.records]
        assert answer.ttl == 30
        assert not answer.ttl_known
        again = await r.resolve("localhost", "A")
        assert again.from_cache
        assert not again.ttl_known
        assert again.to_dict()["ttl_known"] is False


async def test_configurable_ttl():
    backend = SystemBackend(ttl=3)
    loop = asyncio.get_running_loop()
    answer = await backend.resolve(Query("localhost.", "A", loop.time() + 5, relative=True))
    assert answer.records[0].ttl == 3
    assert not answer.ttl_known


async def test_thread_pool_is_bounded(monkeypatch):
    import asyncresolve.backends.system as system

    active = peak = 0
    lock = threading.Lock()
    real = system._getaddrinfo

    def counting(host, family):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            threading.Event().wait(0.01)
            return real("localhost", family)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(system, "_getaddrinfo", counting)
    async with Resolver([SystemBackend(max_threads=4)], cache=None) as r:
        answers = await asyncio.gather(*(r.resolve(f"n{i}.localhost.test", "A") for i in range(200)))
    assert len(answers) == 200
    assert peak == 4


async def test_unknown_name_fails_on_loopback_without_leaving_the_machine():
    # resolv.conf points at 127.0.0.1, where nothing listens: a failure, fast and local
    async with Resolver([SystemBackend()], timeout=5) as r:
        with pytest.raises((NXDomain, ServFail)):
            await r.resolve("no-such-name.invalid", "A")


async def test_error_mapping(monkeypatch):
    import socket

    import asyncresolve.backends.system as system
    from asyncresolve import NoAnswer, ResolveError

    cases = {socket.EAI_NONAME: NXDomain, socket.EAI_AGAIN: ServFail, socket.EAI_FAIL: ServFail,
             socket.EAI_NODATA: NoAnswer, socket.EAI_MEMORY: ResolveError}
    for code, expected in cases.items():
        def fail(host, family, code=code):
            raise socket.gaierror(code, "boom")

        monkeypatch.setattr(system, "_getaddrinfo", fail)
        async with Resolver([SystemBackend()], cache=None) as r:
            with pytest.raises(expected) as info:
                await r.resolve("x.test")
            assert info.value.source == "system"
            if code == socket.EAI_AGAIN:
                assert info.value.rcode is None
