import asyncio

import pytest

from asyncresolve import NXDomain, Resolver, ResolveTimeout, ServFail, TTLCache


async def test_thousand_concurrent_queries_make_one_backend_call(scripted):
    backend = scripted(table={("www.example.test.", "A"): "192.0.2.1"}, delay=0.05)
    async with Resolver([backend]) as r:
        answers = await asyncio.gather(*(r.resolve("www.example.test", "A") for _ in range(1000)))
        assert backend.calls == [("www.example.test.", "A")]
        assert {a.records[0].address for a in answers} == {"192.0.2.1"}
        assert r.stats.coalesced == 999
        assert r.stats.upstream_lookups == 1
        assert len(r._coalescer) == 0


async def test_coalescing_without_a_cache_still_shares_the_lookup(scripted):
    backend = scripted(table={("a.test.", "A"): "192.0.2.1"}, delay=0.02)
    async with Resolver([backend], cache=None) as r:
        await asyncio.gather(*(r.resolve("a.test") for _ in range(50)))
        assert len(backend.calls) == 1
        await r.resolve("a.test")
        assert len(backend.calls) == 2  # no cache: the next query goes upstream again


async def test_cancelled_owner_does_not_cost_the_others_their_answer(scripted, eventually):
    """The first caller runs the lookup in its own task; cancelled, it hands the lookup to a
    task of the coalescer's for the callers that joined it (one more upstream query)."""
    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=0.1)
    async with Resolver([backend]) as r:
        first = asyncio.ensure_future(r.resolve("slow.test"))
        others = [asyncio.ensure_future(r.resolve("slow.test")) for _ in range(10)]
        await eventually(lambda: backend.calls and r.stats.coalesced == 10)
        first.cancel()
        results = await asyncio.wait_for(asyncio.gather(*others), 1)
        assert first.cancelled()
        assert all(a.records[0].address == "192.0.2.7" for a in results)
        assert len(backend.calls) == 2  # the owner's lookup stopped with it, then one restart for all ten
        assert len(r._coalescer) == 0
        assert (await r.resolve("slow.test")).from_cache


async def test_cancelled_joined_waiter_leaves_the_lookup_alone(scripted, eventually):
    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=0.1)
    async with Resolver([backend]) as r:
        first = asyncio.ensure_future(r.resolve("slow.test"))
        others = [asyncio.ensure_future(r.resolve("slow.test")) for _ in range(10)]
        await eventually(lambda: backend.calls and r.stats.coalesced == 10)
        others[3].cancel()
        answer = await first
        results = await asyncio.gather(*others, return_exceptions=True)
        assert answer.addresses == ["192.0.2.7"]
        assert isinstance(results[3], asyncio.CancelledError)
        assert all(a.addresses == ["192.0.2.7"] for i, a in enumerate(results) if i != 3)
        assert len(backend.calls) == 1


async def test_cancelled_owner_alone_stops_its_lookup(scripted, eventually):
    """A lookup nobody waits for any more stops with its owner: nothing left in flight, no
    task running on, nothing cached; the next caller asks again."""
    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=0.05)
    async with Resolver([backend]) as r:
        tasks_before = len(asyncio.all_tasks())
        owner = asyncio.ensure_future(r.resolve("slow.test"))
        await eventually(lambda: backend.calls)
        owner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await owner
        assert len(r._coalescer) == 0
        assert len(asyncio.all_tasks()) == tasks_before
        await asyncio.sleep(0.1)  # past the backend's delay: nothing filled the cache meanwhile
        assert len(r.cache) == 0
        answer = await r.resolve("slow.test")
        assert not answer.from_cache
        assert len(backend.calls) == 2


async def test_all_joined_waiters_cancelled_with_the_owner_stops_the_lookup(scripted, eventually):
    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=0.05)
    async with Resolver([backend]) as r:
        waiters = [asyncio.ensure_future(r.resolve("slow.test")) for _ in range(3)]
        await eventually(lambda: backend.calls and r.stats.coalesced == 2)
        for w in waiters:
            w.cancel()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(x, asyncio.CancelledError) for x in results)
        await asyncio.sleep(0.1)
        assert len(r._coalescer) == 0
        assert len(backend.calls) == 1  # the joined callers were gone before the owner: no restart


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
        assert r.stats.backends["scripted"].crashes == 1
        assert r.stats.crashes == 1
        assert all(type(x).__name__ == "ResolveError" and "backend bug" in str(x) for x in results)
        assert len(r._coalescer) == 0


# -- one deadline per caller -----------------------------------------------------------------

SLOW_ZONE = {"slow.test.": "www 60 IN A 192.0.2.50"}


async def test_patient_waiter_outlives_a_hasty_lookup_it_joined():
    """A caller with timeout=5 that joins a lookup started with timeout=0.1 keeps its own
    deadline: against a server that answers after 0.5 s it gets the answer."""
    from asyncresolve.backends.cares import CaresBackend
    from asyncresolve.testing import DNSLab

    async with DNSLab(SLOW_ZONE) as lab:
        assert lab.stub is not None
        lab.stub.faults.delay = 0.5
        server = f"{lab.stub_server[0]}:{lab.stub_server[1]}"
        async with Resolver([CaresBackend([server], timeout=2.0, tries=1)]) as r:
            hasty = asyncio.ensure_future(r.resolve("www.slow.test", "A", timeout=0.1))
            await asyncio.sleep(0)  # the hasty caller starts the lookup
            assert len(r._coalescer) == 1
            patient = asyncio.ensure_future(r.resolve("www.slow.test", "A", timeout=5))
            with pytest.raises(ResolveTimeout):
                await hasty
            answer = await patient
            assert answer.addresses == ["192.0.2.50"]
            assert r.stats.coalesced == 1


async def test_patient_waiters_restart_once_and_share_the_new_lookup(scripted):
    backend = scripted(table={("late.test.", "A"): "192.0.2.8"}, delay=0.3)
    async with Resolver([backend], cache=None) as r:
        hasty = asyncio.ensure_future(r.resolve("late.test", timeout=0.05))
        await asyncio.sleep(0)
        patient = [asyncio.ensure_future(r.resolve("late.test", timeout=3)) for _ in range(20)]
        results = await asyncio.gather(hasty, *patient, return_exceptions=True)
        assert isinstance(results[0], ResolveTimeout)
        assert all(not isinstance(x, BaseException) and x.addresses == ["192.0.2.8"] for x in results[1:])
        assert len(backend.calls) == 2  # the hasty lookup, then one restart shared by all 20
        assert len(r._coalescer) == 0


async def test_patient_waiters_share_one_restart_and_each_keeps_its_own_deadline(scripted):
    """After the hasty lookup runs out of time, the waiters with time left share one new
    lookup; one whose deadline comes before the answer still times out at its own."""
    backend = scripted(table={("late.test.", "A"): "192.0.2.8"}, delay=0.3)
    async with Resolver([backend], cache=None) as r:
        loop = asyncio.get_running_loop()
        hasty = asyncio.ensure_future(r.resolve("late.test", timeout=0.05))
        await asyncio.sleep(0)
        started = loop.time()
        middle = asyncio.ensure_future(r.resolve("late.test", timeout=0.2))
        patient = asyncio.ensure_future(r.resolve("late.test", timeout=3))
        with pytest.raises(ResolveTimeout):
            await hasty
        with pytest.raises(ResolveTimeout):
            await middle
        assert loop.time() - started >= 0.19
        assert not patient.done()  # the restarted lookup goes on for it
        assert (await patient).addresses == ["192.0.2.8"]
        assert len(backend.calls) == 2
        assert len(r._coalescer) == 0


async def test_a_joined_caller_waits_on_a_future_of_its_own_in_its_own_frame(scripted):
    """What a joined caller costs: one future, no coroutine of the coalescer's; and its
    query's key is memoised for the callers after it."""
    from asyncresolve.resolver import _query_keys

    backend = scripted(table={("joined.test.", "A"): "192.0.2.9"}, delay=0.05)
    async with Resolver([backend]) as r:
        owner = asyncio.ensure_future(r.resolve("joined.test"))
        await asyncio.sleep(0)
        (key,) = r._coalescer._inflight
        joined = r._coalescer.run(key, r._fetch, 1.0)
        assert isinstance(joined, asyncio.Future)
        second = asyncio.ensure_future(r.resolve("joined.test"))
        await asyncio.sleep(0)
        assert ("joined.test", "A") in _query_keys
        assert [(await x).addresses for x in (owner, joined, second)] == [["192.0.2.9"]] * 3
        assert len(backend.calls) == 1
        assert r.stats.coalesced == 2


async def test_waiter_with_a_shorter_deadline_still_times_out_on_its_own(scripted):
    backend = scripted(table={("late.test.", "A"): "192.0.2.8"}, delay=0.3)
    async with Resolver([backend]) as r:
        first = asyncio.ensure_future(r.resolve("late.test", timeout=3))
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ResolveTimeout):
            await r.resolve("late.test", timeout=0.05)
        assert loop.time() - started < 0.25
        assert (await first).addresses == ["192.0.2.8"]
        assert len(backend.calls) == 1


async def test_a_lookup_that_fails_early_is_not_restarted(scripted):
    """A timeout the backend reports before the deadline is the answer for every waiter."""
    backend = scripted(table={("t.test.", "A"): ResolveTimeout}, delay=0.05)
    async with Resolver([backend]) as r:
        first = asyncio.ensure_future(r.resolve("t.test", timeout=1))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(r.resolve("t.test", timeout=3))
        results = await asyncio.gather(first, second, return_exceptions=True)
        assert all(isinstance(x, ResolveTimeout) for x in results)
        assert len(backend.calls) == 1


# -- closing with lookups in flight ----------------------------------------------------------

async def test_closing_gives_waiters_resolver_closed_not_cancelled(scripted):
    from asyncresolve import ResolverClosed

    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=5)
    r = Resolver([backend])
    waiters = [asyncio.ensure_future(r.resolve("slow.test", timeout=t)) for t in (1, 3, 4, 0.5)]
    await asyncio.sleep(0.01)
    await r.aclose()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(x, ResolverClosed) for x in results), results
    assert len(r._coalescer) == 0
    with pytest.raises(ResolverClosed):
        await r.resolve("slow.test")



async def test_closing_before_a_handed_off_lookup_ever_ran_still_settles_its_waiters(scripted, eventually):
    """A lookup handed to a task (its owner was cancelled) settles its waiters itself; a task
    cancelled before its first step never runs, so ``aclose`` must settle them (else they
    would wait forever)."""
    from asyncresolve import ResolverClosed

    backend = scripted(table={("early.test.", "A"): "192.0.2.8"}, delay=5)
    r = Resolver([backend])
    owner = asyncio.ensure_future(r.resolve("early.test"))
    waiters = [asyncio.ensure_future(r.resolve("early.test")) for _ in range(3)]
    await eventually(lambda: backend.calls and r.stats.coalesced == 3)
    owner.cancel()
    # one step at a time, so that aclose runs right after the hand-off, before the new task's first step
    while (lookup := r._coalescer._inflight.get(("early.test", "A", "IN"))) is None or lookup.task is None:  # noqa: ASYNC110
        await asyncio.sleep(0)
    await r.aclose()  # in this task's step: the handed-off task is cancelled before it starts
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 2)
    assert all(isinstance(x, ResolverClosed) for x in results), results
    assert len(r._coalescer) == 0
    assert backend.calls == [("early.test.", "A")]  # the owner's call only: the hand-off never ran


async def test_only_a_caller_that_is_cancelled_sees_cancelled_error(scripted):
    from asyncresolve import ResolverClosed

    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=5)
    r = Resolver([backend])
    cancelled = asyncio.ensure_future(r.resolve("slow.test"))
    other = asyncio.ensure_future(r.resolve("slow.test"))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await r.aclose()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    with pytest.raises(ResolverClosed):
        await other


async def test_closing_while_the_owner_is_cancelled_too_gives_it_cancelled_error(scripted):
    """aclose turns its own cancellation of an owner into ResolverClosed; a cancellation of
    the owner's task by someone else stays a CancelledError."""
    from asyncresolve import ResolverClosed

    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=5)
    r = Resolver([backend])
    owner = asyncio.ensure_future(r.resolve("slow.test"))
    joined = asyncio.ensure_future(r.resolve("slow.test"))
    await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(r.aclose())
    await asyncio.sleep(0)  # aclose has cancelled the owner; now its caller's task is cancelled too
    owner.cancel()
    await asyncio.wait_for(closing, 1)
    with pytest.raises(asyncio.CancelledError):
        await owner
    with pytest.raises(ResolverClosed):
        await joined
    assert len(r._coalescer) == 0


async def test_an_owner_closed_out_of_its_lookup_goes_on_normally_afterwards(scripted):
    """The cancellation aclose uses on an owner is taken back: the caller's task is not left
    with a pending cancellation that would hit its next await."""
    from asyncresolve import ResolverClosed

    backend = scripted(table={("slow.test.", "A"): "192.0.2.7"}, delay=5)
    r = Resolver([backend])

    async def caller() -> str:
        with pytest.raises(ResolverClosed):
            await r.resolve("slow.test")
        await asyncio.sleep(0.01)  # would raise CancelledError if the cancellation were left pending
        task = asyncio.current_task()
        assert task is not None
        return f"went on, cancelling={task.cancelling()}"

    task = asyncio.ensure_future(caller())
    await asyncio.sleep(0.01)
    await r.aclose()
    assert await asyncio.wait_for(task, 1) == "went on, cancelling=0"


async def test_closing_a_lab_resolver_mid_lookup_gives_resolver_closed():
    from asyncresolve import ResolverClosed
    from asyncresolve.backends.cares import CaresBackend
    from asyncresolve.testing import DNSLab

    async with DNSLab(SLOW_ZONE) as lab:
        assert lab.stub is not None
        lab.stub.faults.delay = 0.5
        server = f"{lab.stub_server[0]}:{lab.stub_server[1]}"
        r = Resolver([CaresBackend([server])])
        waiters = [asyncio.ensure_future(r.resolve("www.slow.test", t)) for t in ("A", "A", "AAAA")]
        await asyncio.sleep(0.05)
        await r.aclose()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(x, ResolverClosed) for x in results), results


async def test_patient_callers_survive_a_half_dead_delegation_joined_by_hasty_ones():
    """The issue's scenario: 20 names under a delegation whose first server is dead, each
    looked up by a caller with timeout=0.1 and joined by one with timeout=5. Every patient
    caller gets its answer (today 9 of 20 timed out with the hasty one)."""
    from asyncresolve.backends.iterative import IterativeBackend
    from asyncresolve.testing import DNSLab

    zone = "\n".join(f"n{i} 60 IN A 192.0.2.{i + 1}" for i in range(20))
    async with DNSLab({"half.test.": zone}, servers_per_zone={"half.test.": 2}) as lab:
        lab.server_for("half.test.", 0).faults.drop_rate = 1.0
        async with Resolver([IterativeBackend(root_hints=lab.root_hints, port=lab.port)]) as r:
            hasty = [asyncio.ensure_future(r.resolve(f"n{i}.half.test", timeout=0.1)) for i in range(20)]
            await asyncio.sleep(0)
            patient = [asyncio.ensure_future(r.resolve(f"n{i}.half.test", timeout=5)) for i in range(20)]
            await asyncio.gather(*hasty, return_exceptions=True)
            answers = await asyncio.gather(*patient, return_exceptions=True)
            failed = [a for a in answers if isinstance(a, BaseException)]
            assert not failed, failed[:3]
            assert [a.addresses for a in answers] == [[f"192.0.2.{i + 1}"] for i in range(20)]
