"""The bulk package's small parts: token bucket, input lines, torn-output detection, statuses."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pacing import excess_over_rate

from asyncresolve import Answer, ARecord, CNAMERecord, NoAnswer, NXDomain, ResolveTimeout, ServFail
from asyncresolve.bulk import BulkResult, TokenBucket, status_of
from asyncresolve.bulk.inputs import clean_line
from asyncresolve.bulk.resume import completed_pairs
from asyncresolve.bulk.writers import WRITERS


def test_token_bucket_spends_the_burst_then_one_token_per_interval(clock):
    bucket = TokenBucket(100, burst=5, clock=clock)
    assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(0.01)
    assert [bucket.try_acquire() for _ in range(2)] == [True, False]
    clock.advance(0.025)  # two and a half intervals: two tokens, half of the next one
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
    clock.advance(0.005)
    assert bucket.try_acquire()
    clock.advance(10)  # idle: the burst is back, no more
    assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]


def _grant_times(rate: float, burst: float, waiters: int, stall: float) -> list[float]:
    """When each of ``waiters`` concurrent ``acquire`` calls returns, with the event loop blocked
    for ``stall`` seconds once the first few have gone."""
    async def run() -> list[float]:
        bucket = TokenBucket(rate, burst=burst)
        times: list[float] = []

        async def one() -> None:
            await bucket.acquire()
            times.append(time.monotonic())
            if len(times) == int(burst) + 2:
                time.sleep(stall)  # noqa: ASYNC251 -- a stalled loop: a long callback, a GC pause, a slow disk

        await asyncio.gather(*(one() for _ in range(waiters)))
        return times

    return asyncio.run(run())


def test_token_bucket_lets_out_at_most_the_burst_after_the_loop_stalls():
    # Regression: slots were promised in advance (reserve, then sleep until the slot), so
    # after a stall every waiter whose slot had passed went out at once -- 20 here, against
    # a burst of 2 -- exceeding the limit the upstream was promised.
    rate, burst = 100.0, 2.0
    times = _grant_times(rate, burst, waiters=30, stall=0.2)
    assert len(times) == 30
    assert excess_over_rate(times, rate) <= burst + 1.5, times
    # Pacing starts again after the stall instead of giving up: the rest go one per interval.
    assert times[-1] - times[0] >= 0.2 + (30 - 2 * burst - 2) / rate


def test_token_bucket_serves_waiters_in_order_and_hands_on_a_token_its_holder_gave_up():
    async def run() -> tuple[list[str], float]:
        bucket = TokenBucket(5, burst=1)  # one token per 200 ms
        assert bucket.try_acquire()
        order: list[str] = []
        started = time.monotonic()

        async def one(label: str) -> None:
            await bucket.acquire()
            order.append(label)

        first = asyncio.create_task(one("first"))
        second = asyncio.create_task(one("second"))
        third = asyncio.create_task(one("third"))
        await asyncio.sleep(0)
        granted = bucket._waiters[0]

        def cancel_once_granted() -> None:
            # Runs before the first waiter's task resumes: it is cancelled holding a token.
            if granted.done():
                first.cancel()
            else:
                asyncio.get_running_loop().call_soon(cancel_once_granted)

        cancel_once_granted()
        await second
        handed_on = time.monotonic() - started
        await third
        with pytest.raises(asyncio.CancelledError):
            await first
        return order, handed_on

    order, handed_on = asyncio.run(run())
    assert order == ["second", "third"]
    assert handed_on < 0.3  # the first waiter's token (at 200 ms), not the next one (at 400 ms)


def test_token_bucket_rejects_a_bad_rate():
    with pytest.raises(ValueError, match="rate must be positive"):
        TokenBucket(0)


@pytest.mark.parametrize(("line", "name"), [
    ("  www.example.com  \n", "www.example.com"),
    ("www.example.com.", "www.example.com."),
    ("# comment", None),
    ("   ", None),
    ("https://user:pw@Shop.Example.com:8443/a/b?c#d", "shop.example.com"),
    ("http://[2001:db8::1]:80/", "2001:db8::1"),
    ("ftp://", "ftp://"),
    ("http://[broken/", "http://[broken/"),
    ("exa mple.com", "exa mple.com"),
])
def test_clean_line(line, name):
    assert clean_line(line) == name


def test_statuses():
    assert status_of(NXDomain()) == "NXDOMAIN"
    assert status_of(NoAnswer()) == "NODATA"
    assert status_of(ResolveTimeout()) == "TIMEOUT"
    assert status_of(ServFail()) == "SERVFAIL"
    assert status_of(ServFail(rcode="REFUSED")) == "REFUSED"


def results() -> list[BulkResult]:
    www = Answer("www.example.", "A", [ARecord("web.example.", 60, "192.0.2.1"), ARecord("web.example.", 60,
                                                                                         "192.0.2.2")],
                 "cares", cname_chain=[CNAMERecord("www.example.", 60, "web.example.")])
    return [
        BulkResult("www.example.", "A", "NOERROR", www, source="cares", resolver="127.0.0.1:53", tries=1),
        BulkResult("nx.example.", "A", "NXDOMAIN", error=NXDomain(name="nx.example.", ttl=30), tries=1),
        BulkResult("bad..name", "A", "INVALID"),
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "text"])
def test_resume_keeps_complete_records_and_cuts_a_torn_tail(tmp_path, fmt):
    path = tmp_path / "out"
    with path.open("w") as handle:
        writer = WRITERS[fmt](handle)
        for result in results():
            writer.write(result)
    whole = path.read_bytes()
    expected = {("www.example.", "A"), ("nx.example.", "A"), ("bad..name", "A")}
    assert completed_pairs(str(path), fmt) == expected
    assert path.read_bytes() == whole
    # Cut the file at every byte: only complete records count, and the tail is cut back to them.
    for cut in range(len(whole)):
        path.write_bytes(whole[:cut])
        done = completed_pairs(str(path), fmt)
        kept = path.read_bytes()
        assert whole.startswith(kept)
        assert kept.endswith(b"\n") | (kept == b"")
        assert done <= expected
        assert completed_pairs(str(path), fmt) == done  # idempotent
        if fmt == "text" and b"192.0.2.2" not in whole[:cut]:
            assert ("www.example.", "A") not in done  # a block without all its records is redone
    path.write_bytes(whole)
    assert completed_pairs(str(path), fmt) == expected


def test_json_lines_are_what_json_dumps_gives():
    from asyncresolve import TXTRecord
    from asyncresolve.bulk.writers import JsonLinesWriter, to_json

    weird = 'tx"t\\é.example.'
    extra = [
        BulkResult(weird, "TXT", "NOERROR", Answer(weird, "TXT", [TXTRecord(weird, 5, (b'a"\\b\xc3\xa9',))], "c"),
                   elapsed=1e-7, tries=2, wildcard=True),
        BulkResult("t.example.", "A", "TIMEOUT", error=ResolveTimeout(name="t.example."), tries=3, elapsed=2.5,
                   wildcard=False),
    ]
    writer = JsonLinesWriter(None)  # type: ignore[arg-type]
    for result in [*results(), *extra]:
        line = writer.format(result)
        assert line.endswith("\n")
        assert line.count("\n") == 1
        assert line == json.dumps(to_json(result), separators=(",", ":"), ensure_ascii=False) + "\n"


@pytest.mark.parametrize(("written", "resumed"), [("jsonl", "csv"), ("csv", "text"), ("text", "jsonl")])
def test_resuming_with_the_wrong_format_refuses_and_truncates_nothing(tmp_path, written, resumed):
    from asyncresolve.bulk.resume import NotOurOutput

    path = tmp_path / "out"
    with path.open("w") as handle:
        writer = WRITERS[written](handle)
        for result in results():
            writer.write(result)
    whole = path.read_bytes()
    with pytest.raises(NotOurOutput):
        completed_pairs(str(path), resumed)
    assert path.read_bytes() == whole
    other = tmp_path / "notes.txt"
    other.write_text("my precious notes\nline two\n")
    with pytest.raises(NotOurOutput):
        completed_pairs(str(other), resumed)
    assert other.read_text() == "my precious notes\nline two\n"


def _bulk_args(*argv: str):
    from asyncresolve.cli import build_parser

    return build_parser().parse_args(["bulk", "-", "--nameserver", "127.0.0.1:5353", *argv])


def test_cli_forgery_resistance_options_reach_the_backends():
    from asyncresolve.backends.cares import CaresBackend
    from asyncresolve.bulk.cli import build_run

    pools, _ = build_run(_bulk_args(), ["127.0.0.1:5353"], [], ["A"])
    backend = pools[0].upstreams[0].backend
    assert isinstance(backend, CaresBackend)
    assert backend._options["dns0x20"] is True
    assert backend._options["udp_max_queries"] == 4  # the backend's own default
    pools, _ = build_run(_bulk_args("--no-0x20", "--udp-max-queries", "0"), ["127.0.0.1:5353"], [], ["A"])
    backend = pools[0].upstreams[0].backend
    assert backend._options["dns0x20"] is False
    assert backend._options["udp_max_queries"] == 0


def test_cli_native_backend_is_a_pool_of_one_try_backends():
    from asyncresolve.backends.native import NativeBackend
    from asyncresolve.bulk.cli import NEVER_REPLACE, build_run

    args = _bulk_args("--backends", "native", "--timeout", "1.5", "--no-0x20", "--udp-max-queries", "0")
    pools, run = build_run(args, ["127.0.0.1:5353", "127.0.0.2:5353"], [], ["A"])
    assert [u.address for u in pools[0].upstreams] == ["127.0.0.1:5353", "127.0.0.2:5353"]
    backend = pools[0].upstreams[1].backend
    assert isinstance(backend, NativeBackend)
    assert (backend.tries, backend.timeout) == (1, 1.5)
    assert backend.use_0x20 is False
    assert backend._max_uses == NEVER_REPLACE
    assert list(run.resolver.chain.backends) == [pools[0]]
