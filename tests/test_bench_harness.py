"""The benchmark harness counts what it claims: right, wrong, failed and cut lookups; medians, not bests."""

from __future__ import annotations

import asyncio
import json
import time

from benchmarks.harness import rotated, run_pass, summarise
from benchmarks.servers import address_of, cold_names, expected_address, flat_zone


async def test_run_pass_counts_right_wrong_errors():
    names = cold_names(30)

    async def lookup(name: str) -> str | None:
        i = int(name[1:name.index(".")])
        if i % 10 == 3:
            raise RuntimeError("dropped")
        return "203.0.113.1" if i % 10 == 7 else expected_address(name)

    result = await run_pass(names, expected_address, 5, lookup, limit=30)
    assert (result.ok, result.wrong, result.errors, result.cut) == (24, 3, 3, 0)
    assert result.success == 24 / 30
    assert result.latency.count == 30
    assert "dropped" in result.first_error or "expected" in result.first_error


async def test_run_pass_stops_taking_names_at_its_limit():
    names = cold_names(1000)

    async def slow(name: str) -> str:
        await asyncio.sleep(0.05)
        return expected_address(name)

    result = await run_pass(names, expected_address, 2, slow, limit=0.2)
    assert 0 < result.done < 100
    assert result.cut == 1000 - result.done
    assert result.errors == 0  # names not reached are not failures


async def test_summary_is_median_and_spread_and_plain_json():
    async def ok(name: str) -> str:
        return expected_address(name)

    passes = [await run_pass(cold_names(50), expected_address, 5, ok, limit=30) for _ in range(3)]
    for p, elapsed in zip(passes, (1.0, 2.0, 10.0), strict=True):
        p.elapsed = elapsed
    summary = summarise(passes)
    assert summary["qps_median"] == 25.0
    assert summary["qps_min"] == 5.0
    assert summary["qps_max"] == 50.0
    assert summary["success"] == 1.0
    assert summary["lookups"] == 150
    assert summary["latency_buckets"][-1][1] == 150
    assert json.loads(json.dumps(summary)) == summary


def test_names_and_zone_agree():
    zone = flat_zone(70_000)
    assert f"h69999 IN A {address_of(69_999)}" in zone
    assert expected_address("h69999.bench.test.") == address_of(69_999) == "198.19.17.111"
    assert len(set(map(address_of, range(70_000)))) == 70_000


def test_rotation_changes_who_goes_first():
    assert rotated([1, 2, 3], 0) == [1, 2, 3]
    assert rotated([1, 2, 3], 4) == [2, 3, 1]


async def test_pass_measures_the_clients_cpu_per_name():
    async def busy(name: str) -> str:
        until = time.process_time() + 0.002  # 2 ms of this process's CPU per lookup
        while time.process_time() < until:
            pass
        return expected_address(name)

    async def idle(name: str) -> str:
        await asyncio.sleep(0.002)
        return expected_address(name)

    burning = await run_pass(cold_names(20), expected_address, 1, busy, limit=30)
    sleeping = await run_pass(cold_names(20), expected_address, 1, idle, limit=30)
    assert burning.cpu_us_per_name >= 2000
    assert sleeping.cpu_us_per_name < burning.cpu_us_per_name / 2
    summary = summarise([burning])
    assert summary["cpu_us_per_name_median"] == burning.cpu_us_per_name
    assert summary["cpu_us_per_name_rounds"] == [burning.cpu_us_per_name]


def test_shortcut_scripts_name_contenders_of_the_harness():
    from benchmarks import bench_cares, bench_native
    from benchmarks.contenders import BASELINE, by_label

    for script in (bench_cares, bench_native):
        labels = {c.label for c in by_label(script.CONTENDERS)}
        assert labels == {*script.CONTENDERS, BASELINE}
    assert {"Resolver+native", "NativeBackend alone"} <= set(bench_native.CONTENDERS)


class _CountingFuture(asyncio.Future[str]):
    """Notes how many callbacks (suspended waiters) the future has when it gets its result."""

    waiting = -1

    def set_result(self, result: str) -> None:
        self.waiting = len(self._callbacks or ())  # type: ignore[attr-defined]
        super().set_result(result)


async def test_shared_future_floor_waiters_really_wait():
    """The coalescing floor is waiters suspended on a pending future, as coalesced callers
    are. Until 2026-11-26 the future was settled before their first step: none of them
    suspended, and the floor understated what 10,000 waiters cost."""
    from benchmarks.scenarios import _done_future_floor, _shared_future_floor

    loop = asyncio.get_running_loop()
    made: list[_CountingFuture] = []

    def create_future() -> _CountingFuture:
        made.append(_CountingFuture(loop=loop))
        return made[-1]

    loop.create_future = create_future  # type: ignore[method-assign]
    try:
        assert await _shared_future_floor(500) > 0
        assert made[-1].waiting == 500
        assert await _done_future_floor(500) > 0
        assert made[-1].waiting == 0  # the old floor, kept for comparison: nobody waits
    finally:
        del loop.create_future  # type: ignore[method-assign]
