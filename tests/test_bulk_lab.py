"""resolve_many against the lab: every name once with the right status, bounded concurrency,
rate limits measured at the servers, retries, deadlines, several upstreams, wildcards."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from pacing import excess_over_rate

from asyncresolve import Answer, ARecord, Resolver
from asyncresolve.backends.base import Backend, Query
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.bulk import BulkRun, PoolBackend, WildcardDetector
from asyncresolve.testing import AuthServer, DNSLab

HEAD = ["@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300", "@ 3600 IN NS ns1", "ns1 3600 IN A 127.0.0.1"]


def zone(*lines: str) -> str:
    return "\n".join([*HEAD, *lines]) + "\n"


class Router(Backend):
    """Sends each name to the c-ares backend of the zone it ends with (one lab server per zone)."""

    name = "router"
    honours_deadline = True

    def __init__(self, routes: dict[str, Backend]) -> None:
        self.routes = routes

    async def resolve(self, query: Query) -> Answer:
        for suffix, backend in self.routes.items():
            if query.name.endswith(suffix):
                return await backend.resolve(query)
        raise AssertionError(query.name)

    async def aclose(self) -> None:
        for backend in self.routes.values():
            await backend.aclose()


N_OK, N_NODATA, N_NX, N_FAIL, N_SILENT = 40_000, 4_300, 4_000, 1_500, 200
TRIES = 4  # generous: a loaded machine can drop a burst of UDP replies


@pytest.mark.timeout(300)
async def test_50k_names_each_reported_once_with_its_status_and_bounded_concurrency():
    # The lab runs in its own process: on two cores, the servers and the client each get one.
    script = Path(__file__).with_name("bulk_lab_server.py")
    lab = subprocess.Popen(  # noqa: ASYNC220 - returns at once; the lab's pipe is read through to_thread
        # replies held 0.1 s; the lab counts a held query as in flight for the client until the
        # client's timeout (1.5 s) has passed since it came in
        [sys.executable, str(script), str(N_OK), str(N_NODATA), "0.1", "1.5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        servers = json.loads(await asyncio.to_thread(lab.stdout.readline))  # type: ignore[union-attr]
        routes = {f".{z}": CaresBackend([address], timeout=1.5, tries=1) for z, address in servers.items()}
        names = ([f"h{i}.ok.test" for i in range(N_OK)] + [f"t{i}.ok.test" for i in range(N_NODATA)]
                 + [f"nx{i}.ok.test" for i in range(N_NX)] + [f"s{i}.fail.test" for i in range(N_FAIL)]
                 + [f"q{i}.silent.test" for i in range(N_SILENT)])
        expected = {f"h{i}.ok.test.": "NOERROR" for i in range(N_OK)}
        expected.update({f"t{i}.ok.test.": "NODATA" for i in range(N_NODATA)})
        expected.update({f"nx{i}.ok.test.": "NXDOMAIN" for i in range(N_NX)})
        expected.update({f"s{i}.fail.test.": "SERVFAIL" for i in range(N_FAIL)})
        expected.update({f"q{i}.silent.test.": "TIMEOUT" for i in range(N_SILENT)})
        limit = 300
        async with Resolver([Router(routes)], timeout=2.0) as resolver:
            run = BulkRun(resolver, iter(names), concurrency=limit, retries=TRIES - 1, timeout=1.5, backoff=0.01)
            seen: Counter[str] = Counter()
            wrong = []
            client_peak = 0
            started = time.monotonic()
            async for result in run.results():
                seen[result.name] += 1
                client_peak = max(client_peak, run.in_flight)
                if result.status != expected.get(result.name):
                    wrong.append(result)
                elif result.status == "NOERROR":
                    i = int(result.name[1:].split(".")[0])
                    assert result.answer is not None
                    assert result.answer.addresses == [
                        f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"]
                    assert result.tries <= TRIES
                elif result.status in ("SERVFAIL", "TIMEOUT"):
                    assert result.tries == TRIES  # retried
            elapsed = time.monotonic() - started
        lab.stdin.write("stop\n")  # type: ignore[union-attr]
        lab.stdin.flush()  # type: ignore[union-attr]
        measured = json.loads(await asyncio.to_thread(lab.stdout.readline))  # type: ignore[union-attr]
    finally:
        lab.kill()
        lab.wait()
    assert not wrong, wrong[:5]
    assert len(seen) == len(expected) == len(names)
    assert set(seen.values()) == {1}
    assert run.counts == Counter({"NOERROR": N_OK, "NODATA": N_NODATA, "NXDOMAIN": N_NX,
                                  "SERVFAIL": N_FAIL, "TIMEOUT": N_SILENT})
    assert measured["peak"] <= limit
    # Replies held 0.1 s: a client sending over 1,000 names/s keeps more than 100 waiting there.
    assert measured["peak"] >= limit // 3, f"the servers saw only {measured['peak']} in flight: nothing measured"
    assert client_peak <= limit
    print(f"50k names in {elapsed:.1f} s; peak in flight at the servers {measured['peak']} "
          f"({measured['peak_held']} held, abandoned queries included)")


def _arrivals(server: AuthServer) -> list[float]:
    times: list[float] = []
    original = server.process

    def stamped(wire: bytes, protocol: str):  # type: ignore[no-untyped-def]
        times.append(time.monotonic())
        return original(wire, protocol)

    server.process = stamped  # type: ignore[method-assign]
    return times


def _assert_paced(times: list[float], rate: float, burst: float) -> None:
    """The arrivals keep a token bucket's promise, and the run went at the rate, not below it.

    The promise: no run of consecutive arrivals holds more than ``burst + rate * span``, give or
    take the lab's own view: its servers share the test's event loop, so when the loop stalls
    right after a burst went out, that burst is stamped on arrival together with the burst
    the bucket allows after the stall (``tests/test_bulk_units.py`` checks the bucket's own
    grants to ``burst + 1.5``). The rate: the median over windows of 50 arrivals, so that one
    stall of a loaded machine (which delays what follows it) moves no figure measured.
    """
    excess = excess_over_rate(times, rate)
    assert excess <= 2 * burst + 1.5, excess
    window = 50
    rates = sorted(window / (times[i + window] - times[i]) for i in range(len(times) - window))
    median = rates[len(rates) // 2]
    assert abs(median - rate) / rate <= 0.10, median


async def test_global_rate_limit_holds_within_10_percent_and_ignores_cache_hits_and_duplicates():
    count, rate = 600, 200.0  # low enough for a loaded machine to keep up: the limit is what is measured
    zones = {"ok.test.": zone(*(f"h{i} 300 IN A 192.0.2.{i % 250 + 1}" for i in range(count)))}
    async with DNSLab(zones, record_queries=False) as lab:
        server = lab.server_for("ok.test.")
        arrivals = _arrivals(server)
        async with Resolver([CaresBackend([f"{server.host}:{server.port}"], timeout=1.0)]) as resolver:
            await resolver.resolve("h0.ok.test.")  # cached before the run: takes no token
            names = [f"h{i}.ok.test" for i in range(count)]
            names += names[:count // 2]  # duplicates: cached or coalesced, no token either
            started = time.monotonic()
            statuses = Counter([r.status async for r in resolver.resolve_many(names, concurrency=100, rate=rate)])
            elapsed = time.monotonic() - started
    assert statuses == Counter({"NOERROR": len(names)})
    sent = len(arrivals) - 1
    assert sent == count - 1  # one packet per distinct uncached name
    _assert_paced(arrivals[1:], rate, burst=rate / 20)
    # Had the 300 duplicates and the cached name taken tokens, the run would last 1.5 s longer.
    assert elapsed < (count + 150) / rate, elapsed


async def test_per_server_rate_limit_and_load_spread():
    count, per_server = 500, 100.0
    zones = {"ok.test.": zone(*(f"h{i} 300 IN A 192.0.2.{i % 250 + 1}" for i in range(count)))}
    async with DNSLab(zones, record_queries=False) as lab:
        first = lab.server_for("ok.test.")
        second = lab.stub
        assert second is not None
        stamps = [_arrivals(first), _arrivals(second)]
        pool = PoolBackend([f"{first.host}:{first.port}", f"{second.host}:{second.port}"],
                           rate_per_server=per_server, timeout=1.0)
        async with Resolver([pool]) as resolver:
            # Each server's c-ares channel is made (in a thread) at its first lookup: made
            # before the measured run, so that the stamps time the limiter, not the start-up.
            loop = asyncio.get_running_loop()
            for upstream in pool.upstreams:
                await upstream.backend.resolve(Query("h0.ok.test.", "A", loop.time() + 5))
            for times in stamps:
                times.clear()
            # A stall mid-run (a GC pause, a slow callback): the waiters that missed their turn
            # must not all go out when it ends (they did when slots were promised in advance).
            loop.call_later(1.0, time.sleep, 0.3)
            results = [r async for r in resolver.resolve_many((f"h{i}.ok.test" for i in range(count)),
                                                              concurrency=200)]
    assert Counter(r.status for r in results) == Counter({"NOERROR": count})
    assert {r.resolver for r in results} == {f"{first.host}:{first.port}", f"{second.host}:{second.port}"}
    for times in stamps:
        assert abs(len(times) - count / 2) <= 2  # round robin
        _assert_paced(times, per_server, burst=per_server / 20)


async def test_deadline_starts_when_the_name_is_sent_not_while_it_waits_for_a_slot():
    zones = {"ok.test.": zone(*(f"h{i} 300 IN A 192.0.2.{i + 1}" for i in range(6)))}
    async with DNSLab(zones, record_queries=False) as lab:
        server = lab.server_for("ok.test.")
        server.faults.delay = 0.25
        async with Resolver([CaresBackend([f"{server.host}:{server.port}"], timeout=2.0)]) as resolver:
            # One at a time, 0.25 s each: the last waits 1.25 s for its slot, longer than its 0.6 s timeout.
            results = [r async for r in resolver.resolve_many([f"h{i}.ok.test" for i in range(6)],
                                                              concurrency=1, timeout=0.6, retries=0)]
    assert [r.status for r in results] == ["NOERROR"] * 6
    assert all(0.2 < r.elapsed < 0.6 for r in results)


async def test_retries_on_servfail_and_timeout_never_on_nxdomain_or_nodata():
    async with DNSLab({"ok.test.": zone("t 60 IN TXT x"), "fail.test.": zone()}, record_queries=False) as lab:
        ok, fail = lab.server_for("ok.test."), lab.server_for("fail.test.")
        fail.faults.servfail = True
        routes = {".ok.test.": CaresBackend([f"{ok.host}:{ok.port}"], timeout=2.0, tries=1),
                  ".fail.test.": CaresBackend([f"{fail.host}:{fail.port}"], timeout=2.0, tries=1)}
        async with Resolver([Router(routes)], cache=None) as resolver:
            results = {r.name: r async for r in resolver.resolve_many(
                ["nx.ok.test", "t.ok.test", "x.fail.test"], retries=2, backoff=0.01)}
            refused = [r async for r in resolver.resolve_many(["y.fail.test"], retries=2, retry_on={"TIMEOUT"})]
    assert (results["nx.ok.test."].status, results["nx.ok.test."].tries) == ("NXDOMAIN", 1)
    assert (results["t.ok.test."].status, results["t.ok.test."].tries) == ("NODATA", 1)
    assert (results["x.fail.test."].status, results["x.fail.test."].tries) == ("SERVFAIL", 3)
    assert fail.query_count == 3 + 1
    assert (refused[0].status, refused[0].tries) == ("SERVFAIL", 1)  # SERVFAIL not in retry_on


async def test_pool_stops_sending_to_a_server_that_times_out_far_more(caplog):
    count = 600
    zones = {"ok.test.": zone(*(f"h{i} 300 IN A 192.0.2.{i % 250 + 1}" for i in range(count)))}
    async with DNSLab(zones, record_queries=False, servers_per_zone=3) as lab:
        servers = lab.servers_for("ok.test.")
        servers[2].faults.drop_rate = 1.0
        warned: list[str] = []
        pool = PoolBackend([f"{s.host}:{s.port}" for s in servers], timeout=0.3, min_samples=20,
                           on_disable=lambda upstream, reason: warned.append(upstream.address))
        with caplog.at_level(logging.WARNING, logger="asyncresolve.bulk"):
            async with Resolver([pool]) as resolver:
                results = [r async for r in resolver.resolve_many(
                    (f"h{i}.ok.test" for i in range(count)), concurrency=20, timeout=0.3, retries=3, backoff=0.01)]
        assert warned == [f"{servers[2].host}:{servers[2].port}"]
        assert "no longer sending to" in caplog.text
        assert [u.address for u in pool.active] == [f"{s.host}:{s.port}" for s in servers[:2]]
        assert Counter(r.status for r in results) == Counter({"NOERROR": count})
        # The silent server got its share until it was dropped, then nothing.
        assert servers[2].query_count < count / 6
        assert sum(s.query_count for s in servers[:2]) >= count


async def test_pool_keeps_every_server_when_all_fail_alike():
    async with DNSLab({"ok.test.": zone()}, record_queries=False, servers_per_zone=2) as lab:
        servers = lab.servers_for("ok.test.")
        for server in servers:
            server.faults.servfail = True
        pool = PoolBackend([f"{s.host}:{s.port}" for s in servers], timeout=2.0, min_samples=10)
        async with Resolver([pool]) as resolver:
            results = [r async for r in resolver.resolve_many(
                (f"x{i}.ok.test" for i in range(200)), concurrency=20, retries=2, backoff=0.01, timeout=2.0)]
    assert {r.status for r in results} == {"SERVFAIL"}
    assert len(pool.active) == 2


async def test_wildcard_detection_on_and_off():
    zones = {"example.test.": zone("*.wild 60 IN A 192.0.2.99", "real.wild 60 IN A 192.0.2.1",
                                   "www 60 IN A 192.0.2.10", "*.cn 60 IN CNAME www")}
    names = ["a.wild.example.test", "b.wild.example.test", "real.wild.example.test", "www.example.test",
             "z.cn.example.test", "nope.example.test"]
    async with DNSLab(zones) as lab:
        ip, port = lab.stub_server
        async with Resolver([CaresBackend([f"{ip}:{port}"], timeout=1.0)]) as resolver:
            off = {r.name: r.wildcard async for r in resolver.resolve_many(names)}
            lab.reset_counters()
            detector = WildcardDetector(resolver)
            on = {r.name: r.wildcard async for r in resolver.resolve_many(names, wildcards=detector)}
    assert set(off.values()) == {None}
    assert on == {"a.wild.example.test.": True, "b.wild.example.test.": True, "real.wild.example.test.": False,
                  "www.example.test.": False, "z.cn.example.test.": True, "nope.example.test.": None}
    # One probe pair per (parent, type), shared by the names under it.
    probes = [q.name for q in lab.queries if q.name and len(q.name.split(".")[0]) == 16]
    assert len(probes) == 2 * 3  # wild.example.test., example.test., cn.example.test.


class Instant(Backend):
    name = "instant"

    async def resolve(self, query: Query) -> Answer:
        return Answer(query.name, query.rdtype, [ARecord(query.name, 300, "192.0.2.1")], self.name)


@pytest.mark.timeout(300)
async def test_memory_stays_flat_over_a_generated_million_name_stream():
    # A fast in-process backend (the run is the runner's own cost, bounded on a loaded machine):
    # 20,000 distinct names, each 50 times; a runner that kept the input or the results would grow
    # by hundreds of MB, one that streams stays where it was after the first 100,000.
    total = 1_000_000
    async with Resolver([Instant()]) as resolver:
        run = BulkRun(resolver, (f"host{i % 20_000}.example.test" for i in range(total)), concurrency=200)
        seen = 0
        rss_at_100k = 0
        async for _ in run.results():
            seen += 1
            if seen == 100_000:
                rss_at_100k = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert seen == total
    assert run.counts["NOERROR"] == total
    assert (peak - rss_at_100k) / 1024 < 16, f"RSS grew {(peak - rss_at_100k) / 1024:.0f} MB"


async def test_invalid_names_and_pairs_are_reported_not_raised():
    async with Resolver([Instant()]) as resolver:
        results = {(r.name, r.rdtype): r.status async for r in resolver.resolve_many(
            ["ok.example", "bad..name", "x" * 64 + ".example", ("ok.example", "MX"), ("ok.example", "NOPE"), 42])}
    assert results[("ok.example.", "A")] == "NOERROR"
    assert results[("ok.example.", "MX")] == "NOERROR"
    assert results[("bad..name", "A")] == "INVALID"
    assert results[("x" * 64 + ".example", "A")] == "INVALID"
    assert results[("ok.example", "NOPE")] == "INVALID"
    assert results[("42", "A")] == "INVALID"


async def test_breaking_out_early_stops_every_worker():
    async with Resolver([Instant()]) as resolver:
        before = len(asyncio.all_tasks())
        stream = resolver.resolve_many((f"h{i}.example" for i in range(100_000)), concurrency=50)
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]
        assert len(asyncio.all_tasks()) == before


async def test_an_async_input_and_a_failing_input():
    async def names():
        for i in range(300):
            yield f"h{i}.example"
            if i % 50 == 0:
                await asyncio.sleep(0)

    async def broken():
        yield "a.example"
        raise OSError("disk gone")

    async with Resolver([Instant()]) as resolver:
        got = [r.name async for r in resolver.resolve_many(names(), concurrency=7)]
        assert sorted(got) == sorted(f"h{i}.example." for i in range(300))
        with pytest.raises(OSError, match="disk gone"):
            async for _ in resolver.resolve_many(broken()):
                pass


async def test_a_slow_name_never_blocks_the_others():
    zones = {"ok.test.": zone(*(f"h{i} 300 IN A 192.0.2.{i + 1}" for i in range(100))), "slow.test.": zone()}
    async with DNSLab(zones, record_queries=False) as lab:
        ok, slow = lab.server_for("ok.test."), lab.server_for("slow.test.")
        slow.faults.drop_rate = 1.0
        routes = {".ok.test.": CaresBackend([f"{ok.host}:{ok.port}"], timeout=2.0, tries=1),
                  ".slow.test.": CaresBackend([f"{slow.host}:{slow.port}"], timeout=2.0, tries=1)}
        async with Resolver([Router(routes)]) as resolver:
            names = ["a.slow.test", *(f"h{i}.ok.test" for i in range(100))]
            order = [r.name async for r in resolver.resolve_many(names, concurrency=3, timeout=1.5, retries=0)]
    assert order[-1] == "a.slow.test."
    assert len(order) == 101


class Missing(Backend):
    """Every name is NXDOMAIN, raised from a few frames down as a real backend's would be."""

    name = "missing"

    async def resolve(self, query: Query) -> Answer:
        return await self._deeper(query)

    async def _deeper(self, query: Query) -> Answer:
        from asyncresolve import NXDomain

        raise NXDomain(name=query.name, rdtype=query.rdtype, source=self.name, ttl=60)


async def test_failed_names_leave_no_garbage_cycles_behind():
    # A traceback holds the frames an error went through, and they hold the error back: without
    # care, one reference cycle per NXDOMAIN name, which only the garbage collector frees (a third
    # of a mostly-NXDOMAIN run's CPU time went there). Results keep the error, not its traceback.
    import gc

    async with Resolver([Missing()], cache=None) as resolver:
        names = [f"gone{i}.example.test" for i in range(2_000)]
        gc.collect()
        gc.disable()
        try:
            results = [r async for r in resolver.resolve_many(names, concurrency=100)]
            del results[1:]
            freed = gc.collect()
        finally:
            gc.enable()
    assert results[0].status == "NXDOMAIN"
    assert results[0].error is not None
    assert results[0].error.__traceback__ is None
    assert str(results[0].error).startswith("NXDOMAIN: gone")
    assert freed < len(names) // 10, f"{freed} objects in cycles after {len(names)} failed names"
