import asyncio
import logging
import os
import time

import pytest

from asyncresolve import NoAnswer, Resolver
from asyncresolve.backends import HostsBackend, NotMine, parse_hosts
from asyncresolve.backends.base import Query
from asyncresolve.names import reverse_name

ODD_HOSTS = """\
# a comment line
127.0.0.1   localhost
::1         localhost ip6-localhost   # trailing comment
192.0.2.10  Web.Example.TEST web alias.example.test.
2001:db8::10 web.example.test
192.0.2.11\tTabbed\t  spaced.example.test

not-an-ip   broken.example.test
192.0.2.12
300.1.2.3   bad-octet.test
192.0.2.13  bad..name.test
::ffff:192.0.2.14 mapped.test
fe80::1%eth0 linklocal.test
192.0.2.10  web.example.test
"""


def test_parse_odd_hosts_file():
    table = parse_hosts(ODD_HOSTS)
    assert table.malformed == [8, 9, 10, 11]
    assert table.malformed_count == 4
    assert table.lookup("web.example.test.") == ("web.example.test.", ("192.0.2.10",), ("2001:db8::10",))
    assert table.lookup("alias.example.test.") == ("web.example.test.", ("192.0.2.10",), ())
    assert table.lookup("web.")[1] == ("192.0.2.10",)
    assert table.lookup("spaced.example.test.")[0] == "tabbed."
    assert table.lookup("mapped.test.")[1] == ("192.0.2.14",)
    assert table.lookup("linklocal.test.")[2] == ("fe80::1",)
    assert table.lookup("localhost.") == ("localhost.", ("127.0.0.1",), ("::1",))
    assert table.addresses["192.0.2.10"] == ("web.example.test.", "web.", "alias.example.test.")


def test_parse_garbage_never_crashes():
    garbage = "\x00\xff\n" + "1.2.3.4 " + "a" * 300 + "\n\t\t\n#\n" + "::: x\n" + "1.2.3.4 ok.test\n"
    table = parse_hosts(garbage)
    assert list(table.names) == ["ok.test."]
    assert len(table.malformed) == 3


@pytest.fixture
def hosts_file(tmp_path):
    path = tmp_path / "hosts"
    path.write_text(ODD_HOSTS)
    return path


async def query(backend, name, rdtype):
    import asyncio

    return await backend.resolve(Query(name, rdtype, asyncio.get_running_loop().time() + 1))


async def test_answers_a_aaaa_ptr_and_passes_unknown_names(hosts_file):
    backend = HostsBackend(hosts_file, ttl=7)
    a = await query(backend, "alias.example.test.", "A")
    assert [r.address for r in a.records] == ["192.0.2.10"]
    assert a.canonical_name == "web.example.test."
    assert a.ttl == 7
    assert a.source == "hosts"
    aaaa = await query(backend, "web.example.test.", "AAAA")
    assert aaaa.records[0].address == "2001:db8::10"
    ptr = await query(backend, reverse_name("192.0.2.10"), "PTR")
    assert [r.target for r in ptr.records] == ["web.example.test.", "web.", "alias.example.test."]
    ptr6 = await query(backend, reverse_name("::1"), "PTR")
    assert [r.target for r in ptr6.records] == ["localhost.", "ip6-localhost."]
    with pytest.raises(NotMine):
        await query(backend, "elsewhere.test.", "A")
    with pytest.raises(NotMine):
        await query(backend, reverse_name("192.0.2.99"), "PTR")
    with pytest.raises(NoAnswer) as info:
        await query(backend, "alias.example.test.", "AAAA")
    assert info.value.ttl == 7
    assert not backend.supports("MX")


async def test_malformed_lines_are_logged_once_per_load(hosts_file, caplog):
    backend = HostsBackend(hosts_file)
    with caplog.at_level(logging.WARNING, logger="asyncresolve.backends.hosts"):
        for _ in range(3):
            await query(backend, "web.example.test.", "A")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "4 malformed" in messages[0]
    assert "line 8" in messages[0]


async def test_reload_after_change_at_most_every_interval(hosts_file):
    backend = HostsBackend(hosts_file, reload_interval=0.2)
    assert (await query(backend, "web.example.test.", "A")).records[0].address == "192.0.2.10"
    hosts_file.write_text("192.0.2.99 web.example.test\n")
    future = time.time() + 10
    os.utime(hosts_file, (future, future))
    # inside the interval: still the old content, and no stat
    assert (await query(backend, "web.example.test.", "A")).records[0].address == "192.0.2.10"
    assert backend.loads == 1
    await asyncio.sleep(0.25)  # past the reload interval (never time.sleep: it would stall the loop)
    # the check runs in the background: this lookup may still see the old table, whole
    assert (await query(backend, "web.example.test.", "A")).records[0].address in ("192.0.2.10", "192.0.2.99")
    await backend._checking
    assert (await query(backend, "web.example.test.", "A")).records[0].address == "192.0.2.99"
    assert backend.loads == 2
    with pytest.raises(NotMine):
        await query(backend, "alias.example.test.", "A")


async def test_missing_file_passes_everything(tmp_path):
    backend = HostsBackend(tmp_path / "does-not-exist")
    with pytest.raises(NotMine):
        await query(backend, "localhost.", "A")


async def test_hosts_in_a_resolver_chain(hosts_file, scripted):
    dns = scripted(name="dns", table={("elsewhere.test.", "A"): "192.0.2.50"})
    async with Resolver([HostsBackend(hosts_file), dns]) as r:
        assert (await r.resolve("web", "A")).source == "hosts"
        assert (await r.resolve("elsewhere.test", "A")).source == "dns"
        with pytest.raises(NoAnswer):
            await r.resolve("alias.example.test", "AAAA")  # pinned in the file: not asked of DNS
        assert dns.calls == [("elsewhere.test.", "A")]
