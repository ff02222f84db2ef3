"""The bulk runner's express lane (``asyncresolve.bulk.express``): a miss sent straight to the
native or the c-ares backend (their ``begin``) gives what the full ``Resolver.resolve`` path
gives -- results, errors, statistics, cache, pool tallies -- over the whole lab and its
faults, and keeps the coalescer's promises to callers who join it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import pytest
from native_lab import LAB_QUESTIONS, LAB_ZONES

from asyncresolve import Resolver, TTLCache
from asyncresolve.backends import CaresBackend, NativeBackend
from asyncresolve.backends._cares_records import TYPE_CODES
from asyncresolve.bulk import BulkRun, PoolBackend
from asyncresolve.bulk.express import ExpressLane
from asyncresolve.errors import ResolveError, ResolverClosed
from asyncresolve.testing import DNSLab


def native_pool(server: str, timeout: float) -> PoolBackend:
    """What ``asyncresolve bulk --backends native`` builds for one server."""
    return PoolBackend([server], timeout=timeout,
                       backend_factory=lambda address, t: NativeBackend([address], timeout=t, tries=1))


def pool_of(kind: str, server: str, timeout: float) -> PoolBackend:
    """What ``asyncresolve bulk`` builds for one server: with ``--backends native``, or its
    default (c-ares) -- with three tries inside c-ares instead of one: c-ares sets its own try
    timeout from the server's latency (at least 250 ms, README ``CaresBackend``), and on a
    loaded machine the Python lab server can take longer; the deadline stays the run's."""
    if kind == "native":
        return native_pool(server, timeout)
    return PoolBackend([server], timeout=timeout,
                       backend_factory=lambda address, t: CaresBackend([address], timeout=t, tries=3, max_timeout=t))


KINDS = pytest.mark.parametrize("kind", ["native", "cares"])
BACKEND_CLASSES = {"native": NativeBackend, "cares": CaresBackend}


def stub(lab: DNSLab) -> str:
    return f"{lab.stub_server[0]}:{lab.stub_server[1]}"


def error_summary(error: ResolveError | None) -> tuple[Any, ...] | None:
    if error is None:
        return None
    soa = getattr(error, "soa", None)
    attempts = getattr(error, "attempts", None)
    return (type(error).__name__, str(error), error.source, getattr(error, "ttl", None),
            soa.text if soa is not None else None,
            tuple((name, type(e).__name__) for name, e in attempts) if attempts is not None else None)


def answer_summary(answer: Any) -> tuple[Any, ...] | None:
    if answer is None:
        return None
    return (tuple(sorted(r.text for r in answer.records)), answer.ttl, answer.canonical_name,
            tuple(c.text for c in answer.cname_chain), answer.source, answer.from_cache, answer.ttl_known)


def result_summary(result: Any) -> tuple[Any, ...]:
    return (result.name, result.rdtype, result.status, answer_summary(result.answer), error_summary(result.error),
            result.source, result.resolver, result.tries)


def stats_summary(resolver: Resolver) -> dict[str, Any]:
    snapshot = resolver.stats.snapshot()
    backends = {}
    for name, figures in snapshot.pop("backends").items():
        backends[name] = {k: figures[k] for k in ("answers", "negatives", "errors", "passes", "crashes")}
        backends[name]["latencies"] = figures["latency"]["count"]
    return {"backends": backends, **{k: v for k, v in snapshot.items() if k in (
        "queries", "cache_hits", "cache_misses", "coalesced", "upstream_lookups", "errors", "crashes")}}


def cache_summary(cache: TTLCache) -> list[tuple[Any, ...]]:
    rows = []
    for key, entry in cache._entries.items():
        value = entry.value
        kind = answer_summary(value) if hasattr(value, "records") else error_summary(value.error())
        rows.append((key, kind, round(entry.expires_at - entry.stale_until, 3)))
    return sorted(rows, key=repr)


class BeginCounter:
    """Counts the lookups the backend's ``begin`` took (the lane) and declined."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kind: str = "native") -> None:
        self.taken = self.declined = 0
        cls = BACKEND_CLASSES[kind]
        original = cls.begin

        def counting(backend: Any, *args: Any) -> bool:
            taken = original(backend, *args)
            if taken:
                self.taken += 1
            else:
                self.declined += 1
            return taken

        monkeypatch.setattr(cls, "begin", counting)


async def bulk_run(server: str, questions: list[tuple[str, str]], *, lane: bool, timeout: float = 3.0,
                   monkeypatch: pytest.MonkeyPatch, kind: str = "native",
                   **options: Any) -> tuple[list[Any], dict[str, Any], Any, Any]:
    with monkeypatch.context() as patch:
        if not lane:
            patch.setattr(ExpressLane, "of", classmethod(lambda cls, resolver, loop: None))
        pool = pool_of(kind, server, timeout)
        async with Resolver([pool], cache=TTLCache(), timeout=timeout) as resolver:
            if kind == "cares":  # its channel, made at the first lookup (in a thread), binds it to the loop
                with contextlib.suppress(ResolveError):
                    await resolver.resolve("example.test.", "SOA")
            options.setdefault("concurrency", 500)
            results = [r async for r in resolver.resolve_many(questions, timeout=timeout, **options)]
            tallies = [(u.address, u.total_queries, u.failures,
                        u.backend.stats.tcp_queries if kind == "native" else None) for u in pool.upstreams]
            return ([result_summary(r) for r in results], stats_summary(resolver), cache_summary(resolver.cache),
                    tallies)


@KINDS
@pytest.mark.parametrize("faults", [{}, {"truncate": True}, {"servfail": True}, {"refuse": True}],
                         ids=["clean", "truncated", "servfail", "refused"])
async def test_the_lane_gives_what_the_full_path_gives_over_the_lab(kind, faults, monkeypatch):
    async with DNSLab(LAB_ZONES, seed=5) as lab:
        for key, value in faults.items():
            setattr(lab.stub.faults, key, value)
        questions = list(LAB_QUESTIONS)  # duplicates in another case included: they join each other
        counter = BeginCounter(monkeypatch, kind)
        fast = await bulk_run(stub(lab), questions, lane=True, monkeypatch=monkeypatch, retries=0, kind=kind)
        taken = counter.taken
        full = await bulk_run(stub(lab), questions, lane=False, monkeypatch=monkeypatch, retries=0, kind=kind)
    assert counter.taken == taken, "the full path never begins a lookup"
    # all but the first name, which binds the backend to the loop through the full path (and,
    # for c-ares, the types it does not decode: the full path's NotMine)
    distinct = {(n.lower(), t) for n, t in questions if kind == "native" or t in TYPE_CODES}
    assert taken >= len(distinct) - 1
    results_fast, stats_fast, cache_fast, tallies_fast = fast
    results_full, stats_full, cache_full, tallies_full = full
    assert Counter(results_fast) == Counter(results_full)
    assert stats_fast == stats_full
    assert cache_fast == cache_full
    assert tallies_fast == tallies_full
    statuses = Counter(r[2] for r in results_fast)
    if not faults or faults.get("truncate"):
        assert {"NOERROR", "NXDOMAIN", "NODATA"} <= set(statuses), statuses
    if faults.get("truncate") and kind == "native":
        assert tallies_fast[0][3] > 0  # over TCP, from the backend's own task


@KINDS
async def test_timeouts_and_retries_through_the_lane(kind, monkeypatch):
    async with DNSLab(LAB_ZONES, seed=5) as lab:
        lab.stub.faults.drop_rate = 1.0
        questions = [("www.example.test.", "A"), ("mail.example.test.", "MX"), ("missing.example.test.", "A")]
        counter = BeginCounter(monkeypatch, kind)
        fast = await bulk_run(stub(lab), questions, lane=True, timeout=0.2, monkeypatch=monkeypatch, retries=1,
                              backoff=0.01, kind=kind)
        full = await bulk_run(stub(lab), questions, lane=False, timeout=0.2, monkeypatch=monkeypatch, retries=1,
                              backoff=0.01, kind=kind)
    assert counter.taken >= 4  # the retries too
    assert Counter(fast[0]) == Counter(full[0])
    assert {r[2] for r in fast[0]} == {"TIMEOUT"}
    assert {r[7] for r in fast[0]} == {2}
    assert fast[1:] == full[1:]
    # the pool counted every timeout against the server (c-ares's: its warm-up lookup's too)
    assert fast[3][0][1:3] == ((6, 6) if kind == "native" else (7, 7))


async def lane_in_flight(lab: DNSLab, resolver: Resolver, name: str, timeout: float,
                         **faults: float) -> asyncio.Task[list[Any]]:
    """A one-name bulk run whose lookup is in the lane (after a first name bound the backend),
    the server given ``faults`` once the backend is bound."""
    await resolver.resolve("www.example.test.", "AAAA")  # binds the backend to this loop
    for fault, value in faults.items():
        setattr(lab.stub.faults, fault, value)
    run = asyncio.create_task(_collect(resolver.resolve_many([name], timeout=timeout, retries=0)))
    for _ in range(100):
        await asyncio.sleep(0.005)
        if (name, "A", "IN") in resolver._coalescer._inflight:
            return run
    raise AssertionError("the lookup never went in flight")


async def _collect(results: Any) -> list[Any]:
    return [r async for r in results]


@KINDS
async def test_a_caller_asking_the_same_name_joins_the_lanes_lookup(kind, monkeypatch):
    counter = BeginCounter(monkeypatch, kind)
    async with DNSLab(LAB_ZONES, seed=5) as lab, Resolver([pool_of(kind, stub(lab), 2.0)], timeout=2.0) as resolver:
        before = lab.stub.query_count
        run = await lane_in_flight(lab, resolver, "www.example.test.", 2.0, delay=0.2)
        joined = await resolver.resolve("www.example.test.", "A")
        (result,) = await run
        assert lab.stub.query_count - before == 2  # the AAAA that bound the backend, and one A
    assert counter.taken == 1
    assert result.status == "NOERROR"
    assert result.answer is joined  # the lookup's own answer, shared
    assert resolver.stats.coalesced == 1
    assert sorted(joined.addresses) == ["192.0.2.10", "192.0.2.11"]


@KINDS
async def test_a_patient_joiner_outlives_the_lanes_timeout(kind, monkeypatch):
    async with DNSLab(LAB_ZONES, seed=5) as lab, Resolver([pool_of(kind, stub(lab), 1.0)], timeout=2.0) as resolver:
        run = await lane_in_flight(lab, resolver, "www.example.test.", 0.3, drop_rate=1.0)
        joined = asyncio.create_task(resolver.resolve("www.example.test.", "A", timeout=2.0))
        await asyncio.sleep(0.05)
        lab.stub.faults.drop_rate = 0.0  # the lane's query is lost; the restarted one is answered
        (result,) = await run
        assert result.status == "TIMEOUT"
        assert result.tries == 1
        answer = await joined
    assert sorted(answer.addresses) == ["192.0.2.10", "192.0.2.11"]
    assert resolver.stats.coalesced == 1


@KINDS
async def test_closing_fails_the_lanes_lookups_and_their_joiners_with_resolver_closed(kind):
    async with DNSLab(LAB_ZONES, seed=5) as lab:
        resolver = Resolver([pool_of(kind, stub(lab), 2.0)], timeout=2.0)
        run = await lane_in_flight(lab, resolver, "www.example.test.", 2.0, delay=5.0)
        joined = asyncio.create_task(resolver.resolve("www.example.test.", "A"))
        await asyncio.sleep(0.01)
        await asyncio.wait_for(resolver.aclose(), 2.0)
        with pytest.raises(ResolverClosed):
            await asyncio.wait_for(joined, 2.0)
        (result,) = await asyncio.wait_for(run, 2.0)
    assert result.status == "CLOSED"
    assert not resolver._coalescer._inflight


@pytest.mark.backend_crash_expected
@KINDS
async def test_a_bug_while_finishing_a_lookup_is_a_counted_crash_not_a_dead_reader(kind, monkeypatch):
    async with DNSLab(LAB_ZONES, seed=5) as lab, \
            Resolver([pool_of(kind, stub(lab), 2.0)], cache=TTLCache(), timeout=2.0) as resolver:
        original = TTLCache.store_answer

        def store(cache: TTLCache, key: Any, answer: Any) -> Any:
            if key[0] == "mx1.example.test.":
                raise RuntimeError("boom")
            return original(cache, key, answer)

        monkeypatch.setattr(TTLCache, "store_answer", store)
        await resolver.resolve("example.test.", "SOA")  # binds the backend to this loop
        names = ["www.example.test.", "mail.example.test.", "alias.example.test.", "mx1.example.test."]
        results = {r.name: r async for r in resolver.resolve_many(names, retries=0)}
    assert results["mx1.example.test."].status == "ERROR"
    assert "boom" in str(results["mx1.example.test."].error)
    assert [r.status for n, r in sorted(results.items()) if n != "mx1.example.test."] == ["NOERROR", "NODATA",
                                                                                      "NOERROR"]
    assert resolver.stats.crashes == 1
    assert not resolver._coalescer._inflight


async def test_the_lane_is_used_only_where_it_gives_the_same(monkeypatch):
    async with DNSLab(LAB_ZONES, seed=5) as lab:
        loop = asyncio.get_running_loop()
        native = NativeBackend([stub(lab)])
        cases = {
            "native alone": (Resolver([native]), True),
            "a pool of native backends": (Resolver([native_pool(stub(lab), 1.0)]), True),
            "no cache": (Resolver([native_pool(stub(lab), 1.0)], cache=None), True),
            "a chain of two": (Resolver([NativeBackend([stub(lab)]), CaresBackend([stub(lab)])]), False),
            "a pool of c-ares backends": (Resolver([PoolBackend([stub(lab)])]), True),
            "c-ares alone": (Resolver([CaresBackend([stub(lab)])]), True),
            "a rate per server": (Resolver([PoolBackend([stub(lab)], rate_per_server=10.0,
                                                        backend_factory=lambda a, t: NativeBackend([a]))]), False),
        }
        try:
            for label, (resolver, expected) in cases.items():
                assert (ExpressLane.of(resolver, loop) is not None) is expected, label
        finally:
            for resolver, _ in cases.values():
                await resolver.aclose()


# -- the callback-driven workers (BulkRun's ``_Driver``) ----------------------------------------
async def test_driven_workers_report_invalid_skipped_and_every_name_once(monkeypatch):
    counter = BeginCounter(monkeypatch)
    async with DNSLab(LAB_ZONES, seed=5) as lab, Resolver([native_pool(stub(lab), 2.0)]) as resolver:
        await resolver.resolve("example.test.", "SOA")  # binds the backend to this loop
        names = [f"t{i}.wild.example.test" for i in range(3000)] + ["bad..name", "-" * 70 + ".test", ""]
        skip = {("t7.wild.example.test.", "A"), ("t8.wild.example.test.", "A")}
        run = BulkRun(resolver, names, concurrency=40, skip=skip)
        results = [r async for r in run.results()]
        address = stub(lab)
    assert Counter(r.status for r in results) == Counter({"NOERROR": 2998, "INVALID": 3})
    assert len({r.name for r in results if r.status == "NOERROR"}) == 2998
    assert run.skipped == 2
    assert (run.done, run.in_flight, run.sent) == (3001, 0, 2998)
    assert counter.taken == 2998
    assert {r.resolver for r in results if r.ok} == {address}


async def test_a_failing_input_ends_a_driven_run_with_its_error(monkeypatch):
    def names():
        for i in range(500):
            yield f"t{i}.wild.example.test"
        raise ValueError("the input broke")

    async with DNSLab(LAB_ZONES, seed=5) as lab, Resolver([native_pool(stub(lab), 2.0)]) as resolver:
        await resolver.resolve("example.test.", "SOA")
        seen: list[Any] = []

        async def drain() -> None:
            async for result in resolver.resolve_many(names(), concurrency=50):
                seen.append(result)

        with pytest.raises(ValueError, match="the input broke"):
            await drain()
    assert len(seen) <= 500
    assert {r.status for r in seen} <= {"NOERROR"}


async def test_stopping_or_leaving_a_driven_run_leaves_nothing_running():
    async with DNSLab(LAB_ZONES, seed=5) as lab, Resolver([native_pool(stub(lab), 2.0)]) as resolver:
        backend = resolver.backends[0].upstreams[0].backend
        await resolver.resolve("example.test.", "SOA")
        lab.stub.faults.delay = 0.02
        before = len(asyncio.all_tasks())
        run = BulkRun(resolver, (f"t{i}.wild.example.test" for i in range(100_000)), concurrency=100)
        got = 0
        async for _ in run.results():
            got += 1
            if got == 150:
                run.stop()
        assert 150 <= got < 400
        assert len(asyncio.all_tasks()) == before
        stream = resolver.resolve_many((f"u{i}.wild.example.test" for i in range(100_000)), concurrency=100)
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]
        assert len(asyncio.all_tasks()) == before
        sent = backend.stats.udp_sent
        await asyncio.sleep(0.1)  # the replies still on their way start nothing new
        assert backend.stats.udp_sent == sent


@pytest.mark.parametrize("retries", [0, 2])
async def test_names_that_cannot_be_sent_fail_one_by_one_without_recursion(retries, monkeypatch):
    """Every query fails inside ``begin`` (no socket can be opened): the outcome arrives before
    ``begin`` returns, and the driver takes it in its loop, not in a nested call per name."""
    counter = BeginCounter(monkeypatch)
    async with DNSLab(LAB_ZONES, seed=5) as lab:

        def no_socket(backend: NativeBackend, server: Any) -> Any:
            raise OSError(101, "Network is unreachable")

        monkeypatch.setattr(NativeBackend, "_open_socket", no_socket)
        full_path = 0
        one = BulkRun._one

        def counted(run: BulkRun, *args: Any) -> Any:
            nonlocal full_path
            full_path += 1
            return one(run, *args)

        monkeypatch.setattr(BulkRun, "_one", counted)
        async with Resolver([native_pool(stub(lab), 2.0)]) as resolver:
            results = [r async for r in resolver.resolve_many(
                (f"t{i}.wild.example.test" for i in range(3000)), concurrency=500, retries=retries, backoff=0.0)]
    assert Counter(r.status for r in results) == Counter({"NETWORK_ERROR": 3000})
    assert {r.tries for r in results} == {retries + 1}
    assert "unreachable" in str(results[0].error)
    assert counter.taken >= 3000 * (retries + 1) - 10  # all but the first few (the loop's binding)
    # the full path: the first few (before the backend was bound to the loop), and the retries
    # (their back-off); a nested call per name would have overflowed the stack into it too
    assert full_path <= 5 + (3000 if retries else 0)


async def test_a_rate_limited_run_takes_the_lane_from_its_coroutines(monkeypatch):
    counter = BeginCounter(monkeypatch)
    async with DNSLab(LAB_ZONES, seed=5) as lab, Resolver([native_pool(stub(lab), 2.0)]) as resolver:
        await resolver.resolve("example.test.", "SOA")
        results = [r async for r in resolver.resolve_many(
            (f"t{i}.wild.example.test" for i in range(200)), concurrency=20, rate=2000.0)]
    assert Counter(r.status for r in results) == Counter({"NOERROR": 200})
    assert counter.taken == 200


@pytest.mark.timeout(30)
async def test_a_socket_replaced_while_its_own_reply_is_read_ends_that_read():
    """The driver sends the next query from inside the reader callback; with one socket of 2
    queries, that send replaces (and closes) the very socket being read. The reader must
    stop reading it, not loop on its closed descriptor."""
    async with DNSLab(LAB_ZONES, seed=5) as lab:
        pool = PoolBackend([stub(lab)], timeout=2.0, backend_factory=lambda address, t: NativeBackend(
            [address], timeout=t, tries=1, sockets=1, udp_max_queries=2))
        async with Resolver([pool]) as resolver:
            await resolver.resolve("example.test.", "SOA")
            run = BulkRun(resolver, [f"t{i}.wild.example.test" for i in range(40)], concurrency=1)
            results = await asyncio.wait_for(_collect(run.results()), 20)
            backend = pool.upstreams[0].backend
    assert Counter(r.status for r in results) == Counter({"NOERROR": 40})
    assert backend.stats.sockets_opened >= 20


async def test_c_ares_is_never_entered_from_its_own_callback(monkeypatch):
    """A driven worker sends its next name from the callback that delivered the last one; for
    c-ares that callback runs inside ``ares_process_fd``. Those queries wait until c-ares has
    returned (``_Channel.submit_soon``): every submit happens outside c-ares's callbacks, some
    of them deferred, and the results are the full path's, at a concurrency that makes every
    worker send many names."""
    from asyncresolve.backends.cares import _Channel

    inside = deferred = submitted = 0
    original_submit, original_soon = _Channel.submit, _Channel.submit_soon

    def submit(channel: Any, *args: Any) -> None:
        nonlocal inside, submitted
        submitted += 1
        inside += channel._processing
        original_submit(channel, *args)

    def submit_soon(channel: Any, *args: Any) -> None:
        nonlocal deferred
        deferred += channel._processing
        original_soon(channel, *args)

    monkeypatch.setattr(_Channel, "submit", submit)
    monkeypatch.setattr(_Channel, "submit_soon", submit_soon)
    async with DNSLab(LAB_ZONES, seed=5) as lab:
        questions = list(LAB_QUESTIONS)
        fast = await bulk_run(stub(lab), questions, lane=True, monkeypatch=monkeypatch, kind="cares", retries=0,
                              concurrency=4)
        full = await bulk_run(stub(lab), questions, lane=False, monkeypatch=monkeypatch, kind="cares", retries=0,
                              concurrency=4)
    assert inside == 0
    assert deferred > len(questions) // 2  # most names were sent from a callback
    assert submitted >= 2 * len({(n.lower(), t) for n, t in questions if t in TYPE_CODES}) - 2
    assert Counter(fast[0]) == Counter(full[0])
    assert fast[1:] == full[1:]
