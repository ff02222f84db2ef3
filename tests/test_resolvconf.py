"""resolv.conf, nsswitch.conf and host.conf read as glibc reads them; the search walk."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncresolve import Answer, ARecord, NoAnswer, NXDomain, ResolveTimeout, ServFail
from asyncresolve.backends.nsswitch import (
    files_and_dns_only,
    parse_host_conf_multi,
    parse_hosts_sources,
    read_host_conf_multi,
    read_hosts_sources,
)
from asyncresolve.backends.resolvconf import ResolvConf, parse_resolv_conf, read_resolv_conf, search, search_candidates


def test_resolv_conf_fields_and_glibc_limits() -> None:
    conf = parse_resolv_conf(
        "# comment\n; other\nnameserver 127.0.0.53 # trailing text ignored\nnameserver bogus\n"
        "nameserver ::1\nnameserver fe80::1%lo\nnameserver 127.0.0.9\n"
        "domain ignored.example\nsearch Corp.Example lab.example. corp.example\n"
        "options ndots:99 timeout:0 attempts:9 rotate edns0 use-vc no-tld-query\n",
        hostname="host.local.example",
    )
    assert conf == ResolvConf(nameservers=("127.0.0.53", "::1", "fe80::1%lo"),
                              search=("corp.example.", "lab.example."), ndots=15, timeout=1.0, attempts=5,
                              rotate=True, use_vc=True, no_tld_query=True)


def test_resolv_conf_lines_as_glibc_reads_them() -> None:
    # inet_aton forms; a keyword only at the start of a line; "#" later on a line is text
    conf = parse_resolv_conf(" nameserver 127.0.0.3\nnameserver\t127.2\nsearch a.example # b.example\n"
                             "search\noptions rotatex\n")
    assert conf.nameservers == ("127.0.0.2",)
    # glibc searches "#" and "b.example" too; "#" is not a name we can ask, so it is dropped
    assert conf.search == ("a.example.", "b.example.")
    assert conf.rotate


def test_resolv_conf_defaults_domain_and_environment(tmp_path: Path) -> None:
    assert read_resolv_conf(tmp_path / "missing", environ={}, hostname="box") == ResolvConf()
    assert read_resolv_conf(tmp_path / "missing", environ={}, hostname="box.site.example").search == (
        "site.example.",)
    assert parse_resolv_conf("search a.example\ndomain b.example\n").search == ("b.example.",)
    conf = parse_resolv_conf("search a.example\noptions ndots:3\n",
                             environ={"LOCALDOMAIN": "x.example y.example", "RES_OPTIONS": "ndots:0 attempts:1"})
    assert conf.search == ("x.example.", "y.example.")
    assert conf.ndots == 0
    assert conf.attempts == 1
    assert parse_resolv_conf("options ndots:abc timeout:3x\n").ndots == 0  # atoi, as glibc
    assert parse_resolv_conf("options timeout:3x\n").timeout == 3.0


def test_search_candidates_follow_ndots() -> None:
    search_list = ("sub.example.", "example.")
    assert search_candidates("www.", search_list, 1) == ["www.sub.example.", "www.example.", "www."]
    assert search_candidates("a.b.", search_list, 1) == ["a.b.", "a.b.sub.example.", "a.b.example."]
    assert search_candidates("a.b.", search_list, 2) == ["a.b.sub.example.", "a.b.example.", "a.b."]
    assert search_candidates("www.", search_list, 0) == ["www.", "www.sub.example.", "www.example."]
    assert search_candidates("www.", (".", "example."), 1) == ["www.", "www.example."]


def answer(name: str) -> Answer:
    return Answer(name, "A", [ARecord(name, 60, "192.0.2.1")], "test")


def asker(outcomes: dict[str, object], asked: list[str]):  # type: ignore[no-untyped-def]
    async def ask(name: str) -> Answer:
        asked.append(name)
        outcome = outcomes.get(name, NXDomain(name=name, ttl=50))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]
    return ask


async def test_search_walk_errors_as_glibc() -> None:
    domains = ("sub.example.", "example.")
    # NODATA in the first domain goes on; found in the second
    asked: list[str] = []
    found = await search("www.", domains, 1, asker({"www.sub.example.": NoAnswer(ttl=5),
                                                   "www.example.": answer("www.example.")}, asked))
    assert found.name == "www.example."
    assert asked == ["www.sub.example.", "www.example."]
    # nothing: NODATA wins over NXDOMAIN, with the least negative TTL seen
    asked = []
    with pytest.raises(NoAnswer) as info:
        await search("www.", domains, 1, asker({"www.example.": NoAnswer(ttl=30)}, asked))
    assert asked == ["www.sub.example.", "www.example.", "www."]
    assert info.value.ttl == 30
    # tried as it is first: that error is the one reported
    asked = []
    with pytest.raises(NXDomain) as nx:
        await search("a.b.", domains, 1, asker({"a.b.example.": NoAnswer(ttl=3)}, asked))
    assert asked == ["a.b.", "a.b.sub.example.", "a.b.example."]
    assert nx.value.name == "a.b."
    assert nx.value.ttl == 3
    # SERVFAIL goes on to the next domain; REFUSED or a timeout ends the list (as-is still tried)
    asked = []
    with pytest.raises(ServFail):
        await search("www.", domains, 1, asker({"www.sub.example.": ServFail(rcode="SERVFAIL")}, asked))
    assert asked == ["www.sub.example.", "www.example.", "www."]
    asked = []
    with pytest.raises(NXDomain):
        await search("www.", domains, 1, asker({"www.sub.example.": ServFail(rcode="REFUSED")}, asked))
    assert asked == ["www.sub.example.", "www."]
    # no-tld-query: a dotless name that was searched is not tried as it is
    asked = []
    with pytest.raises(NXDomain):
        await search("www.", domains, 1, asker({}, asked), no_tld_query=True)
    assert asked == ["www.sub.example.", "www.example."]
    asked = []
    with pytest.raises(ResolveTimeout):
        await search("www.", domains, 1, asker({"www.sub.example.": ResolveTimeout(),
                                                "www.": ResolveTimeout()}, asked))
    assert asked == ["www.sub.example.", "www."]


def test_nsswitch_hosts_line() -> None:
    text = "passwd: files\n# hosts: nope\nhosts:  files mdns4_minimal [NOTFOUND=return] dns # x\n"
    sources = parse_hosts_sources(text)
    assert sources is not None
    assert [s.name for s in sources] == ["files", "mdns4_minimal", "dns"]
    assert sources[1].actions == ("notfound=return",)
    assert not files_and_dns_only(sources)
    assert files_and_dns_only(parse_hosts_sources("hosts: files dns\n"))
    assert files_and_dns_only(parse_hosts_sources("HOSTS:\tfiles\tdns [NOTFOUND=return]\n"))
    for line in ("hosts: dns files", "hosts: files [ NOTFOUND = return ] dns", "hosts: files resolve dns",
                 "hosts: files", "hosts: files myhostname dns", "passwd: files"):
        assert not files_and_dns_only(parse_hosts_sources(line)), line


def test_missing_files(tmp_path: Path) -> None:
    assert read_hosts_sources(tmp_path / "missing") is None
    assert not files_and_dns_only(None)  # glibc's built-in default: not ours to guess
    assert read_host_conf_multi(tmp_path / "missing", environ={}) is False


def test_host_conf_multi(tmp_path: Path) -> None:
    assert parse_host_conf_multi("multi on\n")
    assert not parse_host_conf_multi("multi off\n")
    assert parse_host_conf_multi("order hosts,bind\nMULTI On # yes\n")
    conf = tmp_path / "host.conf"
    conf.write_text("multi on\n")
    assert read_host_conf_multi(conf, environ={}) is True
    assert read_host_conf_multi(conf, environ={"RESOLV_MULTI": "off"}) is False
