"""Bad input gets InvalidName or InvalidQuery, on cache misses and cache hits alike, and
nothing else: no TypeError, OverflowError, UnicodeError escapes, whatever the arguments."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncresolve import Answer, ARecord, InvalidName, InvalidQuery, Resolver, ResolveTimeout, TTLCache
from asyncresolve.backends.base import Backend, Query

BAD_TIMEOUTS = ["1", math.nan, math.inf, -math.inf, 1e300, 10**400, 0, -1, True, b"1", [1], 86_401]


class Everything(Backend):
    """Answers every query with one A record: the resolver, not a backend, is under test."""

    name = "everything"

    def __init__(self) -> None:
        self.calls = 0

    async def resolve(self, query: Query) -> Answer:
        self.calls += 1
        return Answer(query.name, query.rdtype, [ARecord(query.name, 300, "192.0.2.1")], self.name)


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=lambda v: repr(v)[:16])
async def test_bad_timeouts_raise_invalid_query_on_misses_and_on_hits(timeout):
    backend = Everything()
    async with Resolver([backend], cache=TTLCache()) as r:
        with pytest.raises(InvalidQuery):
            await r.resolve("miss.test", timeout=timeout)
        await r.resolve("hit.test")
        with pytest.raises(InvalidQuery):
            await r.resolve("hit.test", timeout=timeout)  # a cache hit: validated all the same
        with pytest.raises(InvalidQuery):
            await r.resolve_addresses("hit.test", timeout=timeout)
        assert backend.calls == 1


@pytest.mark.parametrize("timeout", [*BAD_TIMEOUTS, None], ids=lambda v: repr(v)[:16])
def test_bad_resolver_timeouts_raise_invalid_query(timeout):
    with pytest.raises(InvalidQuery):
        Resolver([Everything()], timeout=timeout)


async def test_good_timeouts_of_every_numeric_kind_work():
    from fractions import Fraction

    async with Resolver([Everything()]) as r:
        for timeout in (1, 0.5, 86_400, Fraction(1, 2)):
            assert (await r.resolve("ok.test", timeout=timeout)).addresses == ["192.0.2.1"]


async def test_resolve_addresses_refuses_a_bad_family():
    async with Resolver([Everything()]) as r:
        for bad in ("x", None, 12345, 1.5, [2]):
            with pytest.raises(InvalidQuery):
                await r.resolve_addresses("ok.test", family=bad)
        assert await r.resolve_addresses("ok.test", family=2) == ["192.0.2.1"]


async def test_type0_and_digit_strings_through_the_resolver():
    async with Resolver([Everything()]) as r:
        assert (await r.resolve("ok.test", "15")).rdtype == "MX"
        for bad in ("TYPE0", 0, "NONE"):
            with pytest.raises(InvalidQuery):
                await r.resolve("ok.test", bad)



async def test_the_hit_path_memo_never_takes_a_number_or_bytes_for_text():
    """The resolver memoises (name, type) as given to the cache key: only text may enter,
    since ``True == 1 == 1.0`` and a memo keyed on them would let an invalid type through."""
    async with Resolver([Everything()]) as r:
        assert (await r.resolve("ok.test", 1)).rdtype == "A"
        assert (await r.resolve("ok.test", "1")).rdtype == "A"
        assert (await r.resolve("ok.test", "A")).from_cache
        for bad_type in (True, 1.0, b"A"):
            with pytest.raises(InvalidQuery):
                await r.resolve("ok.test", bad_type)
        with pytest.raises(InvalidName):
            await r.resolve(b"\xff.test", "A")
        relative, absolute = await r.resolve("ok.test", "A"), await r.resolve("ok.test.", "A")
        assert relative.from_cache
        assert absolute is not relative


_anything = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=300), st.binary(max_size=80), st.lists(st.integers(), max_size=3),
    st.sampled_from(["localhost", "a\\.", "a\\109.test", "\u3002", "x" * 300, "15", "TYPE0", "MX", "*.a"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=_anything, rdtype=_anything, timeout=_anything)
def test_random_arguments_only_raise_invalid_name_or_invalid_query(name, rdtype, timeout):
    async def scenario() -> None:
        async with Resolver([Everything()], cache=TTLCache()) as r:
            for _ in range(2):  # the second call is a cache hit where the first answered
                try:
                    answer = await r.resolve(name, rdtype, timeout=timeout)
                except (InvalidName, InvalidQuery) as error:
                    assert len(str(error)) < 400  # noqa: PT017 - either outcome is right: checked each way
                except ResolveTimeout:  # a valid but tiny timeout may run out before the answer
                    assert isinstance(timeout, (int, float))
                    assert 0 < timeout < 0.01
                else:
                    assert isinstance(answer, Answer)

    asyncio.run(scenario())


# -- getaddrinfo: only the errors the stdlib's would raise -------------------------------------

_ports = st.one_of(st.none(), st.integers(min_value=-(2**66), max_value=2**66), st.text(max_size=12),
                   st.binary(max_size=8), st.sampled_from(["http", "domain", "syslog", "80", b"53"]),
                   st.floats(allow_nan=True), st.lists(st.integers(), max_size=2))
_ints = st.one_of(st.integers(min_value=-(2**40), max_value=2**40), st.sampled_from([0, 1, 2, 10, 1024, 0x10000]),
                  st.none(), st.text(max_size=3), st.floats(allow_nan=True))
_hosts = st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=20), st.integers(),
                   st.sampled_from(["127.1", "0x7f.1", "::1%lo", ".", "a..b", "bücher.test", "ok.test", "x" * 300]))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(host=_hosts, port=_ports, family=_ints, kind=_ints, proto=_ints, flags=_ints)
def test_getaddrinfo_raises_only_what_the_stdlib_raises(host, port, family, kind, proto, flags):
    """Whatever the arguments: a result, a ``socket.gaierror``, or the very exception type the
    stdlib raises for them (``TypeError`` for a non-int family, ``OSError`` for a float
    port...); never ``UnicodeError``, ``AttributeError`` or a crash of our own."""
    import socket

    try:  # no lookup: AI_NUMERICHOST only converts and checks the arguments
        in_range = isinstance(flags, int) and -(2**31) <= flags < 2**31  # else: OverflowError first
        socket.getaddrinfo(host, port, family, kind, proto, flags | socket.AI_NUMERICHOST if in_range else flags)
        stdlib_error: type[BaseException] | None = None
    except socket.gaierror:
        stdlib_error = None
    except UnicodeError:
        stdlib_error = None  # the stdlib's idna codec: the resolver says gaierror(EAI_NONAME)
    except Exception as error:  # noqa: BLE001 - whatever the stdlib raises, ours must raise too
        stdlib_error = type(error)

    async def scenario() -> None:
        async with Resolver([Everything()]) as r:
            try:
                await r.getaddrinfo(host, port, family=family, type=kind, proto=proto, flags=flags)
            except socket.gaierror:
                assert stdlib_error is None
            except Exception as error:  # noqa: BLE001 - compared with what the stdlib raised
                assert stdlib_error is not None, repr(error)  # noqa: PT017 - the outcome is the stdlib's
                assert isinstance(error, stdlib_error), repr(error)  # noqa: PT017

    asyncio.run(scenario())
