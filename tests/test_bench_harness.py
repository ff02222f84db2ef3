"""The benchmark harness counts what it claims: right, wrong, failed and cut lookups; medians, not bests."""

from __future__ import annotations

import asyncio
import json

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
