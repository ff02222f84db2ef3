import asyncio

import pytest

from asyncresolve import (
    FallthroughPolicy,
    NetworkError,
    NoAnswer,
    NoBackend,
    NXDomain,
    Resolver,
    ResolveTimeout,
    ServFail,
)
from asyncresolve.backends import NotMine

NAME = ("www.example.test.", "A")


async def test_not_mine_passes_to_next(scripted):
    first = scripted(name="first", table={NAME: NotMine})
    second = scripted(name="second", table={NAME: "192.0.2.2"})
    async with Resolver([first, second]) as r:
        answer = await r.resolve("www.example.test")
        assert answer.source == "second"
        assert len(first.calls) == 1
        assert r.stats.backends["first"].passes == 1
        assert r.stats.backends["second"].answers == 1


async def test_backend_that_cannot_answer_the_type_is_skipped(scripted):
    v4_only = scripted(name="v4", table={("x.test.", "MX"): "192.0.2.1"}, types=frozenset({"A"}))
    anything = scripted(name="any", table={("x.test.", "MX"): "192.0.2.3"})
    async with Resolver([v4_only, anything]) as r:
        assert (await r.resolve("x.test", "MX")).source == "any"
        assert v4_only.calls == []


async def test_no_backend_for_the_type(scripted):
    v4_only = scripted(types=frozenset({"A"}))
    async with Resolver([v4_only]) as r:
        with pytest.raises(NoBackend):
            await r.resolve("x.test", "TXT")


@pytest.mark.parametrize("final", [NXDomain, NoAnswer])
async def test_negative_answers_are_final(scripted, final):
    first = scripted(name="dns", table={NAME: final})
    second = scripted(name="other", table={NAME: "192.0.2.2"})
    async with Resolver([first, second]) as r:
        with pytest.raises(final) as info:
            await r.resolve("www.example.test")
        assert info.value.source == "dns"
        assert second.calls == []


@pytest.mark.parametrize("transient", [ResolveTimeout, ServFail, NetworkError])
async def test_failures_fall_back_to_the_next_backend(scripted, transient):
    first = scripted(name="flaky", table={NAME: transient})
    second = scripted(name="backup", table={NAME: "192.0.2.2"})
    async with Resolver([first, second]) as r:
        assert (await r.resolve("www.example.test")).source == "backup"


async def test_policy_can_make_failures_final_and_negatives_fall_through(scripted):
    first = scripted(name="a", table={NAME: ServFail, ("n.test.", "A"): NXDomain})
    second = scripted(name="b", table={NAME: "192.0.2.2", ("n.test.", "A"): "192.0.2.3"})
    policy = FallthroughPolicy(on_servfail=False, on_nxdomain=True)
    async with Resolver([first, second], fallthrough=policy) as r:
        with pytest.raises(ServFail):
            await r.resolve("www.example.test")
        assert (await r.resolve("n.test")).source == "b"


async def test_all_fail_gives_most_informative_error(scripted):
    a = scripted(name="a", table={NAME: ResolveTimeout})
    b = scripted(name="b", table={NAME: ServFail(rcode="REFUSED")})
    c = scripted(name="c", table={NAME: NetworkError})
    async with Resolver([a, b, c]) as r:
        with pytest.raises(ServFail) as info:
            await r.resolve("www.example.test")
        assert info.value.rcode == "REFUSED"
        assert info.value.source == "b"
        assert [name for name, _ in info.value.attempts] == ["a", "b", "c"]


async def test_everyone_passes_gives_no_backend(scripted):
    async with Resolver([scripted(name="a"), scripted(name="b")]) as r:
        with pytest.raises(NoBackend):
            await r.resolve("nobody.test")


async def test_slow_backend_is_cut_at_the_deadline_and_the_next_is_not_tried_after_it(scripted):
    slow = scripted(name="slow", table={NAME: "192.0.2.1"}, delay=5)
    backup = scripted(name="backup", table={NAME: "192.0.2.2"})
    async with Resolver([slow, backup], timeout=0.2) as r:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ResolveTimeout):
            await r.resolve("www.example.test")
        assert 0.15 < loop.time() - started < 0.35
        assert backup.calls == []  # the deadline was spent


async def test_backend_own_timeout_falls_back_within_the_deadline(scripted):
    class GivesUpEarly(scripted):
        async def resolve(self, query):
            self.calls.append((query.name, query.rdtype))
            await asyncio.sleep(0.05)
            raise ResolveTimeout(name=query.name, rdtype=query.rdtype)

    first = GivesUpEarly(name="first")
    second = scripted(name="second", table={NAME: "192.0.2.2"})
    async with Resolver([first, second], timeout=1) as r:
        assert (await r.resolve("www.example.test")).source == "second"
        assert r.stats.backends["first"].errors == 1


async def test_os_errors_become_network_errors(scripted):
    first = scripted(name="first", table={NAME: ConnectionRefusedError("refused")})
    async with Resolver([first]) as r:
        with pytest.raises(NetworkError) as info:
            await r.resolve("www.example.test")
        assert "refused" in str(info.value)


async def test_a_lookup_in_flight_keeps_few_objects_for_the_garbage_collector():
    """Every object a lookup keeps alive while it waits is walked by each young collection.

    A miss used to keep five closure cells (``Resolver._fetch``'s lambda, a generator in
    ``Chain.resolve``) and a sixth coroutine frame (``Coalescer.run`` passing the result
    through); counted here over 200 lookups in flight."""
    import gc
    import types

    from asyncresolve import Answer, ARecord, TTLCache
    from asyncresolve.backends.base import Backend

    release = asyncio.Event()

    class Waiting(Backend):
        name = "waiting"

        async def resolve(self, query):
            await release.wait()
            return Answer(query.name, query.rdtype, [ARecord(query.name, 60, "192.0.2.1")], self.name)

    def count(kind: type) -> int:
        return sum(1 for o in gc.get_objects() if type(o) is kind)

    lookups = 200
    async with Resolver([Waiting()], cache=TTLCache()) as r:
        cells, coroutines = count(types.CellType), count(types.CoroutineType)
        tasks = [asyncio.create_task(r.resolve(f"n{i}.flight.test")) for i in range(lookups)]
        while len(r._coalescer) < lookups:  # noqa: ASYNC110 - every lookup started and waiting
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert count(types.CellType) - cells < lookups // 4  # none per lookup (5 before)
        # resolve, the coalescer's owner, _fetch, the chain, the backend and its Event.wait:
        # 6 frames (7 before)
        assert count(types.CoroutineType) - coroutines <= 6 * lookups
        release.set()
        answers = await asyncio.gather(*tasks)
    assert [a.records[0].address for a in answers] == ["192.0.2.1"] * lookups
