"""The c-ares backend's search list, and the resolver keeping "www" and "www." apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncresolve import NXDomain, Resolver
from asyncresolve.backends import CaresBackend
from asyncresolve.backends.base import Query
from asyncresolve.testing import DNSLab

ZONES = {
    "example.test.": """
        @        3600 IN SOA ns1 hostmaster 1 7200 900 1209600 9
        www       300 IN A   192.0.2.1
        www.sub   300 IN A   192.0.2.2
    """,
}


async def test_relative_names_are_searched_absolute_ones_never() -> None:
    async with DNSLab(ZONES) as lab:
        host, port = lab.stub_server
        backend = CaresBackend([f"{host}:{port}"], search=["sub.example.test", "example.test"], ndots=1)
        async with Resolver([backend]) as r:
            found = await r.resolve("www", "A")
            assert found.addresses == ["192.0.2.2"]
            assert found.name == "www.sub.example.test."
            lab.reset_counters()
            with pytest.raises(NXDomain) as info:
                await r.resolve("www.", "A")  # absolute: asked as it is, only
            assert [q.name for q in lab.queries] == ["www."]
            assert info.value.ttl is not None
            # dots >= ndots: as it is first, then the list
            lab.reset_counters()
            assert (await r.resolve("www.example.test", "A")).addresses == ["192.0.2.1"]
            assert [q.name for q in lab.queries] == ["www.example.test."]
            lab.reset_counters()
            with pytest.raises(NXDomain) as missing:
                await r.resolve("nope.example", "A")
            assert [q.name for q in lab.queries] == ["nope.example.", "nope.example.sub.example.test.",
                                                     "nope.example.example.test."]
            assert missing.value.ttl == 9  # the least negative TTL seen (the lab zone's SOA minimum)


async def test_given_nameservers_mean_no_search_list() -> None:
    async with DNSLab(ZONES) as lab:
        host, port = lab.stub_server
        backend = CaresBackend([f"{host}:{port}"])
        async with Resolver([backend]) as r:
            with pytest.raises(NXDomain):
                await r.resolve("www", "A")
        assert backend.search is None or backend.search == ()


async def test_search_list_from_resolv_conf(tmp_path: Path) -> None:
    async with DNSLab(ZONES) as lab:
        host, port = lab.stub_server
        conf = tmp_path / "resolv.conf"
        conf.write_text(f"nameserver {host}\nsearch sub.example.test\noptions ndots:3 timeout:2 attempts:4 rotate\n")
        backend = CaresBackend(resolv_conf=conf, port=port)
        async with Resolver([backend]) as r:
            assert (await r.resolve("www", "A")).addresses == ["192.0.2.2"]
        assert backend.search == ("sub.example.test.",)
        assert backend.ndots == 3
        assert backend._options["timeout"] == 2.0
        assert backend._options["tries"] == 4
        assert backend._options["rotate"]


async def test_relative_and_absolute_are_cached_apart(scripted) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, bool]] = []

    def answer(query: Query) -> str:
        seen.append((query.name, query.relative))
        return "192.0.2.1" if query.relative else "192.0.2.2"

    backend = scripted(table={("www.", "A"): answer})
    async with Resolver([backend]) as r:
        assert (await r.resolve("www", "A")).addresses == ["192.0.2.1"]
        assert (await r.resolve("www.", "A")).addresses == ["192.0.2.2"]
        assert (await r.resolve("WWW", "A")).from_cache
        assert (await r.resolve("www.", "A")).from_cache
    assert seen == [("www.", True), ("www.", False)]
