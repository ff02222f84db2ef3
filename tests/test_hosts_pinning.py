"""Hosts-file pinning that holds: from the first lookup, during reloads, under every
spelling of a name; a parse that is linear, off the loop and one at a time."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from asyncresolve import Resolver
from asyncresolve.backends import HostsBackend
from asyncresolve.backends import hosts as hosts_module
from asyncresolve.backends.base import Query
from asyncresolve.backends.hosts import parse_hosts
from asyncresolve.names import normalize_name


def pinned_file(path: Path, count: int) -> Path:
    path.write_text("".join(f"192.0.2.{i % 250 + 1} pinned{i}.test\n" for i in range(count)))
    return path


async def test_every_first_lookup_waits_for_the_first_load(tmp_path: Path, scripted) -> None:
    # 999 concurrent lookups of pinned names as the resolver starts: all from the file
    hosts = pinned_file(tmp_path / "hosts", 999)
    dns = scripted(name="dns", table={(f"pinned{i}.test.", "A"): "198.51.100.1" for i in range(999)})
    async with Resolver([HostsBackend(hosts), dns], timeout=10) as r:
        answers = await asyncio.gather(*(r.resolve(f"pinned{i}.test", "A") for i in range(999)))
    assert {a.source for a in answers} == {"hosts"}
    assert dns.calls == []


async def test_first_load_wait_is_bounded_by_the_deadline(tmp_path: Path, monkeypatch, scripted) -> None:
    release = threading.Event()
    real = HostsBackend._load

    def stuck(self: HostsBackend) -> bool:
        release.wait(10)
        return real(self)

    monkeypatch.setattr(HostsBackend, "_load", stuck)
    dns = scripted(name="dns", table={("pinned1.test.", "A"): "198.51.100.1"})
    try:
        async with Resolver([HostsBackend(pinned_file(tmp_path / "hosts", 3)), dns], timeout=0.3) as r:
            started = time.monotonic()
            from asyncresolve import ResolveTimeout

            with pytest.raises(ResolveTimeout):
                await r.resolve("pinned1.test", "A")
            assert time.monotonic() - started < 2
            assert dns.calls == []  # not asked of DNS while the pin is unknown
    finally:
        release.set()


@pytest.mark.parametrize("spelling", ["www.example.co\\109", "WWW.Example.COM.", "\\119ww.example.com",
                                      "www.exampl\\e.com"])
async def test_escaped_spellings_cannot_bypass_the_file(tmp_path: Path, scripted, spelling: str) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.7 www.example.com\n")
    dns = scripted(name="dns", table={})
    dns.table = {(n, "A"): "198.51.100.66" for n in ("www.example.com.", normalize_name(spelling))}
    async with Resolver([HostsBackend(hosts), dns]) as r:
        answer = await r.resolve(spelling, "A")
    assert answer.source == "hosts"
    assert answer.addresses == ["192.0.2.7"]
    assert dns.calls == []


def test_an_escaped_dot_is_another_name() -> None:
    from asyncresolve.backends.hosts import canonical_name

    assert canonical_name("www\\.example.com.") != "www.example.com."
    table = parse_hosts("192.0.2.7 www.example.com\n")
    assert table.lookup(canonical_name("www\\.example.com.")) is None


def test_hosts_key_is_the_resolver_key() -> None:
    from asyncresolve.backends.hosts import canonical_name, hosts_key

    for name in ("Localhost", "a-b_c.Example.TEST.", "x" * 63 + ".test", "bücher.example", "a.b.c.d.e.f"):
        assert hosts_key(name) == canonical_name(normalize_name(name))


def test_parse_is_linear_when_many_lines_share_an_address() -> None:
    # ad-block lists: 80,000 names on one address took ~30 s (quadratic) before
    text = "".join(f"0.0.0.0 ad{i}.tracker.test\n" for i in range(80_000))
    started = time.perf_counter()
    table = parse_hosts(text)
    elapsed = time.perf_counter() - started
    assert len(table.names) == 80_000
    assert "ad79999.tracker.test." in table.names
    assert elapsed < 8, f"parse took {elapsed:.1f} s"


def test_multi_off_keeps_the_first_line_of_each_family() -> None:
    text = "192.0.2.1 two.test\n192.0.2.2 two.test\n2001:db8::1 two.test\n2001:db8::2 two.test\n"
    assert parse_hosts(text, multi=True).lookup("two.test.") == (
        "two.test.", ("192.0.2.1", "192.0.2.2"), ("2001:db8::1", "2001:db8::2"))
    assert parse_hosts(text, multi=False).lookup("two.test.") == ("two.test.", ("192.0.2.1",), ("2001:db8::1",))


async def test_one_reload_at_a_time_and_lookups_keep_the_old_table(tmp_path: Path, monkeypatch) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.1 old.test\n")
    backend = HostsBackend(hosts, reload_interval=0.01)
    loop = asyncio.get_running_loop()

    async def ask(name: str) -> list[str]:
        answer = await backend.resolve(Query(name, "A", loop.time() + 2))
        return answer.addresses

    assert await ask("old.test.") == ["192.0.2.1"]
    active = peak = 0
    lock = threading.Lock()
    gate = threading.Event()
    real = hosts_module.parse_hosts_lines

    def slow_parse(lines, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            gate.wait(10)
            return real(lines, **kwargs)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(hosts_module, "parse_hosts_lines", slow_parse)
    hosts.write_text("192.0.2.2 old.test\n")
    future = time.time() + 10
    os.utime(hosts, (future, future))
    # many lookups over many intervals while the parse hangs: answered at once, old table
    for _ in range(30):
        started = time.monotonic()
        assert await ask("old.test.") == ["192.0.2.1"]
        assert time.monotonic() - started < 0.5
        await asyncio.sleep(0.02)
    assert peak == 1
    gate.set()
    await backend._checking
    for _ in range(100):
        if await ask("old.test.") == ["192.0.2.2"]:
            break
        await asyncio.sleep(0.02)
    assert await ask("old.test.") == ["192.0.2.2"]
    assert peak == 1


def test_parse_spellings_of_one_name() -> None:
    table = parse_hosts("192.0.2.1 Abc.Test.\n192.0.2.2 abc.test\n192.0.2.3 ABC.TEST\n", multi=True)
    assert list(table.names) == ["abc.test."]
    assert table.lookup("abc.test.") == ("abc.test.", ("192.0.2.1", "192.0.2.2", "192.0.2.3"), ())
    long_name = ".".join(["a" * 63] * 4)  # 255 characters: too long
    assert parse_hosts(f"192.0.2.1 {long_name}\n").malformed == [1]


async def test_aclose_waits_for_a_reload_in_flight(tmp_path: Path, monkeypatch) -> None:
    hosts = pinned_file(tmp_path / "hosts", 3)
    backend = HostsBackend(hosts, reload_interval=0.0)
    loop = asyncio.get_running_loop()
    await backend.resolve(Query("pinned1.test.", "A", loop.time() + 2))
    gate, running = threading.Event(), threading.Event()
    real = hosts_module.parse_hosts_lines

    def slow_parse(lines, **kwargs):  # type: ignore[no-untyped-def]
        running.set()
        gate.wait(10)
        return real(lines, **kwargs)

    monkeypatch.setattr(hosts_module, "parse_hosts_lines", slow_parse)
    future = time.time() + 10
    os.utime(hosts, (future, future))
    await backend.resolve(Query("pinned1.test.", "A", loop.time() + 2))  # starts a background reload
    assert await asyncio.to_thread(running.wait, 10)
    closing = asyncio.ensure_future(backend.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()
    gate.set()
    await asyncio.wait_for(closing, 10)
    assert backend._checking is not None
    assert backend._checking.done()


def test_table_is_compact() -> None:
    # a 1M-line file cost 854 MB (850+ bytes a line) before; the names themselves are ~60
    import tracemalloc

    lines = [f"0.0.0.0 ad{i}.tracker.test\n" if i % 10 else f"10.0.{i >> 8 & 255}.{i & 255} h{i}.lan h{i}\n"
             for i in range(50_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        table = parse_hosts("".join(lines))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(table.names) == 55_000
    assert held / len(lines) < 250, f"{held / len(lines):.0f} bytes a line"
