import asyncio

import pytest

from asyncresolve import NXDomain, Resolver, ResolveTimeout, ServFail, TTLCache


async def test_thousand_concurrent_queries_make_one_backend_call(scripted):
    backend = scripted(table={("www.example.test.", "A"): "192.0.2.1"}, delay=0.05)
    async with Resolver([backend]) as r:
        answers = await asyncio.gather(*(r.resolve("www.example.test", "A") for _ in range(1000)))
        assert backend.calls == [("www.example.test.", "A")]
        assert {a.records[0].address for a in answers} == {"192.0.2.1"}
        assert r.stats.coalesced == 999 and r.stats.upstream_lookups == 1
        assert len(r._coalescer) == 0


async def test_coalescing_without_a_cache_still_shares_the_lookup(scripted):
    backend = scripted(table={("a.test.", "A"): "192.0.2.1"}, delay=0.02)
    async with Resolver([backend], cache=None) as r:
        await asyncio.gather(*(r.resolve("a.test") for _ in range(50)))
        assert len(backend.calls) == 1
        await r.resolve("a.test")
        assert len(backend.calls) == 2  # no cache: the next query goes upstream again


async def test_cancelled_waiter_does_not_cancel_the_others(scripted, eventually):
    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=0.1)
    async with Resolver([backend]) as r:
        first = asyncio.ensure_future(r.resolve("slow.test"))
        others = [asyncio.ensure_future(r.resolve("slow.test")) for _ in range(10)]
        await eventually(lambda: backend.calls and r.stats.coalesced == 10)
        first.cancel()
        results = await asyncio.gather(*others)
        assert first.cancelled()
        assert all(a.records[0].address == "192.0.2.7" for a in results)
        assert len(backend.calls) == 1
        assert len(r._coalescer) == 0


async def test_all_waiters_cancelled_lookup_still_fills_cache(scripted, eventually):
    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=0.05)
    async with Resolver([backend]) as r:
        waiters = [asyncio.ensure_future(r.resolve("slow.test")) for _ in range(3)]
        await eventually(lambda: backend.calls and r.stats.coalesced == 2)
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        await eventually(lambda: len(r._coalescer) == 0)  # the lookup ran to its end
        assert len(r._coalescer) == 0
        answer = await r.resolve("slow.test")
        assert answer.from_cache and len(backend.calls) == 1


async def test_waiter_timeout_leaves_lookup_for_patient_waiters(scripted, eventually):
    backend = scripted(table={("slow.test.", "A"): "192.0.2.9"}, delay=0.2)
    async with Resolver([backend], timeout=2.0) as r:
        patient = asyncio.ensure_future(r.resolve("slow.test"))
        await eventually(lambda: backend.calls)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ResolveTimeout):
            await r.resolve("slow.test", timeout=0.05)
        assert loop.time() - started < 0.1
        assert (await patient).records[0].address == "192.0.2.9"
        assert len(backend.calls) == 1


@pytest.mark.parametrize("error", [NXDomain, ServFail])
async def test_errors_reach_every_waiter(scripted, error):
    backend = scripted(table={("bad.test.", "A"): error}, delay=0.02)
    async with Resolver([backend], cache=TTLCache()) as r:
        results = await asyncio.gather(*(r.resolve("bad.test") for _ in range(20)), return_exceptions=True)
        assert all(isinstance(x, error) for x in results)
        assert len(backend.calls) == 1
        assert len(r._coalescer) == 0
        assert r.stats.errors[error.__name__] == 20


@pytest.mark.backend_crash_expected
async def test_unexpected_backend_exception_does_not_leak_inflight_entries(scripted):
    def boom(query):
        raise RuntimeError("backend bug")

    backend = scripted(table={("bug.test.", "A"): boom}, delay=0.01)
    async with Resolver([backend]) as r:
        results = await asyncio.gather(*(r.resolve("bug.test") for _ in range(5)), return_exceptions=True)
        assert r.stats.backends["scripted"].crashes == 1 and r.stats.crashes == 1  # counted, once
        assert all(type(x).__name__ == "ResolveError" and "backend bug" in str(x) for x in results)
        assert len(r._coalescer) == 0
