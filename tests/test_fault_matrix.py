"""The fault matrix: every lab fault against each DNS backend (c-ares, iterative).

A zone served by two lab servers. "One bad": the fault is on the server each backend asks
first (c-ares: the first nameserver; iterative: the one made fastest); the right answer is
expected. "All bad": the fault is on both; the right error is expected within the deadline.
In every case: no forged record is returned or cached (the next lookup, faults off, gets
the real data from a server), and ``stats`` counts the answers and errors that happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from asyncresolve.backends.base import Backend
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.backends.iterative import IterativeBackend
from asyncresolve.cache import TTLCache
from asyncresolve.errors import NegativeAnswer, ResolveError, ResolveTimeout, ServFail
from asyncresolve.resolver import Resolver
from asyncresolve.testing import AuthServer, DNSLab, Faults
from asyncresolve.testing.malformed import FORGED, MALFORMED

ORIGIN = "matrix.test."
ZONE = "\n".join(f"n{i} 300 IN A 192.0.2.7" for i in range(200)) + "\n"
VICTIM = "www 300 IN A 192.0.2.66\n"
FORGED_ADDRESSES = {"198.51.100.66", "203.0.113.9"}
ONE_BAD_DEADLINE = 4.0
ALL_BAD_DEADLINE = 1.2
SLACK = 0.3

Setter = Callable[[Faults], None]


def fault(**values: Any) -> Setter:
    def apply(faults: Faults) -> None:
        for key, value in values.items():
            setattr(faults, key, value)
    return apply


def poison(faults: Faults) -> None:
    faults.poison_with("www.victim.test. 300 IN A 198.51.100.66")


def poison_answer(faults: Faults) -> None:
    faults.poison_with("www.victim.test. 300 IN A 198.51.100.66", section="answer")


FAULTS: dict[str, Setter] = {
    "delay-beyond-deadline": fault(delay=5.0),
    "servfail": fault(servfail=True),
    "refused": fault(refuse=True),
    "lame": fault(lame=True),
    "tcp-reset": fault(truncate=True, tcp_reset=True),
    "tcp-silent": fault(truncate=True, tcp_silent=True),
    "tcp-drip": fault(truncate=True, tcp_drip=1.0),
    "wrong-id": fault(wrong_id=True),
    "wrong-question": fault(wrong_question=True),
    "wrong-source": fault(other_source=True),
    "poison-additional": poison,
    "poison-answer": poison_answer,
    **{f"malformed-{name}": fault(malformed=name) for name in MALFORMED},
    **{f"forged-{name}": fault(forge=name) for name in FORGED},
}
# Faults that still give the right answer when every server has them.
HARMLESS = {"poison-additional", "poison-answer", "forged-ttl-2^31"}
# c-ares hands a parseable reply over as final (it cannot be told to wait for another):
# a dishonest one from the first server is the right error (ServFail, not cached), not
# the other server's answer. The iterative backend ignores it and asks the next server.
CARES_FINAL = ({f"forged-{name}" for name in FORGED} - {"forged-ttl-2^31"}) | {"lame"}
# c-ares's parser takes an A record with a 5-byte RDATA as its first 4 bytes (the bad
# server's own in-zone data, 192.0.2.1): lenient, but not a forgery from elsewhere.
CARES_LENIENT = {"malformed-rdlength-long-a": "192.0.2.1"}
# A CNAME loop served as authoritative data is the right error for both.
LOOPS = {"forged-cname-loop"}
KINDS = ["cares", "iterative"]


async def make(kind: str, lab: DNSLab, servers: list[AuthServer]) -> tuple[Resolver, Backend]:
    backend: Backend
    if kind == "cares":
        backend = CaresBackend([s.address for s in servers], timeout=0.25, tries=2)
    else:
        iterative = IterativeBackend(root_hints=lab.root_hints, port=lab.port, initial_timeout=0.3)
        backend = iterative
    resolver = Resolver(backends=[backend], cache=TTLCache())
    if isinstance(backend, IterativeBackend):
        # learn the delegation, then make the first server the preferred one
        await resolver.resolve(f"n199.{ORIGIN}", "A", timeout=5)
        for _ in range(80):  # smoothed: converge on a fast first server and a slower second
            backend.infra.servers.record_rtt(servers[0].address, 0.00001)
            backend.infra.servers.record_rtt(servers[1].address, 0.01)
    return resolver, backend


@pytest.fixture
async def lab() -> AsyncIterator[DNSLab]:
    async with DNSLab({ORIGIN: ZONE, "victim.test.": VICTIM}, servers_per_zone={ORIGIN: 2}, seed=3) as running:
        yield running


def forged_in(records: Any) -> bool:
    return any(getattr(r, "address", None) in FORGED_ADDRESSES for r in records)


async def no_forgery_cached(resolver: Resolver, lab: DNSLab, name: str, kind: str) -> None:
    for server in lab.servers_for(ORIGIN):
        server.faults.reset()
    answer = await resolver.resolve(name, "A", timeout=5)
    assert [r.address for r in answer.records] == ["192.0.2.7"]  # type: ignore[attr-defined]
    if kind == "iterative":  # it can reach victim.test.'s own server: the real data
        victim = await resolver.resolve("www.victim.test.", "A", timeout=5)
        assert [r.address for r in victim.records] == ["192.0.2.66"]  # type: ignore[attr-defined]
    else:  # c-ares only talks to matrix.test.'s servers: nothing of victim.test. is cached
        assert resolver.cache.get(("www.victim.test.", "A", "IN")) is None


@pytest.mark.parametrize("name", list(FAULTS))
@pytest.mark.parametrize("kind", KINDS)
async def test_one_bad_server(lab: DNSLab, kind: str, name: str) -> None:
    servers = lab.servers_for(ORIGIN)
    resolver, backend = await make(kind, lab, servers)
    loop = asyncio.get_running_loop()
    try:
        FAULTS[name](servers[0].faults)
        qname = f"n1.{ORIGIN}"
        started = loop.time()
        try:
            answer = await resolver.resolve(qname, "A", timeout=ONE_BAD_DEADLINE)
        except ResolveError as exc:
            took = loop.time() - started
            assert (kind == "cares" and name in CARES_FINAL) or name in LOOPS, f"{name}: {exc!r}"
            assert isinstance(exc, ServFail)
            assert not isinstance(exc, NegativeAnswer)
            assert took <= ONE_BAD_DEADLINE + SLACK
            assert resolver.stats.errors.get("ServFail", 0) >= 1
        else:
            addresses = [r.address for r in answer.records]  # type: ignore[attr-defined]
            assert not forged_in(answer.records)
            if name == "forged-ttl-2^31":  # the bad server's record, its TTL read as 0
                assert addresses == ["192.0.2.77"], answer
                assert answer.ttl == 0, answer
            elif kind == "cares" and name in CARES_LENIENT:
                assert addresses in (["192.0.2.7"], [CARES_LENIENT[name]])
            else:
                assert addresses == ["192.0.2.7"], name
            assert resolver.stats.backends[backend.name].answers >= 1
        if kind == "iterative" and isinstance(backend, IterativeBackend):
            stats = backend.transport.stats
            if name.startswith("malformed-"):
                # (an empty datagram is never sent: that one is a timeout)
                assert stats.malformed + stats.ignored + stats.timeouts >= 1, (name, stats)
            if name in ("wrong-id", "wrong-question", "wrong-source", "forged-echo", "forged-no-qr"):
                assert stats.ignored >= 1, (name, stats)
            if name.startswith("tcp-"):
                assert stats.tcp_queries >= 1, (name, stats)
        await no_forgery_cached(resolver, lab, f"n2.{ORIGIN}", kind)
    finally:
        await resolver.aclose()


# All bad: a representative of each family (the malformed variants are covered one by one
# above; here a sample keeps the run short).
ALL_BAD = [
    "delay-beyond-deadline", "servfail", "refused", "lame", "tcp-reset", "tcp-silent", "tcp-drip",
    "wrong-id", "wrong-question", "wrong-source", "malformed-pointer-loop", "malformed-huge-rdlength",
    "malformed-ancount-beyond", "malformed-random-512", "forged-echo", "forged-rcode-11",
    "forged-off-chain", "forged-ch-class", "forged-cname-loop", "poison-additional", "forged-ttl-2^31",
]


@pytest.mark.parametrize("name", ALL_BAD)
@pytest.mark.parametrize("kind", KINDS)
async def test_all_servers_bad(lab: DNSLab, kind: str, name: str) -> None:
    servers = lab.servers_for(ORIGIN)
    resolver, _ = await make(kind, lab, servers)
    loop = asyncio.get_running_loop()
    try:
        for server in servers:
            FAULTS[name](server.faults)
        started = loop.time()
        try:
            answer = await resolver.resolve(f"n3.{ORIGIN}", "A", timeout=ALL_BAD_DEADLINE)
        except ResolveError as exc:
            took = loop.time() - started
            assert name not in HARMLESS, f"{name}: {exc!r}"
            assert not isinstance(exc, NegativeAnswer), f"{name}: {exc!r}"  # never cached as NODATA
            assert took <= ALL_BAD_DEADLINE + SLACK, took
            if name == "delay-beyond-deadline":
                assert isinstance(exc, ResolveTimeout)
            if name in ("servfail", "refused"):
                assert isinstance(exc, (ServFail, ResolveTimeout))
            assert sum(resolver.stats.errors.values()) >= 1
        else:
            assert name in HARMLESS, f"{name}: answered {answer!r}"
            addresses = [r.address for r in answer.records]  # type: ignore[attr-defined]
            assert addresses == (["192.0.2.77"] if name == "forged-ttl-2^31" else ["192.0.2.7"])
            assert name != "forged-ttl-2^31" or answer.ttl == 0
        await no_forgery_cached(resolver, lab, f"n4.{ORIGIN}", kind)
    finally:
        await resolver.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_thirty_percent_drop_still_answers(lab: DNSLab, kind: str) -> None:
    servers = lab.servers_for(ORIGIN)
    resolver, _ = await make(kind, lab, servers)
    try:
        for server in servers:
            server.faults.drop_rate = 0.3
        results = await asyncio.gather(*(
            resolver.resolve(f"n{i}.{ORIGIN}", "A", timeout=4) for i in range(10, 40)
        ), return_exceptions=True)
        answered = [r for r in results if not isinstance(r, BaseException)]
        assert len(answered) >= 27, results
        assert all(not forged_in(a.records) for a in answered)
    finally:
        await resolver.aclose()
