"""The default chain against glibc, in private mount namespaces.

Each test binds its own resolv.conf, nsswitch.conf, hosts and host.conf over /etc in a
child process (``unshare -m``) whose resolv.conf names the lab's stub server on port 53 of a
127.x address: the child's ``Resolver()`` and its ``getaddrinfo`` see the same files, and
nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pytest

from asyncresolve.testing import DNSLab
from asyncresolve.testing.peers import require_peer, require_root

ZONES = {
    "example.test.": """
        @          3600 IN SOA  ns1 hostmaster 1 7200 900 1209600 7
        www         300 IN A    192.0.2.10
        www         300 IN AAAA 2001:db8::10
        short         2 IN A    192.0.2.20
        alias        60 IN CNAME www
        www.sub     300 IN A    192.0.2.30
        one.two     300 IN A    192.0.2.40
        v6only.sub  300 IN AAAA 2001:db8::50
        v6only      300 IN A    192.0.2.50
        pinned      300 IN A    192.0.2.66
        mail        300 IN MX   10 www
    """,
}

HOSTS = """\
127.0.0.1   localhost
::1         localhost ip6-localhost
192.0.2.99  pinned.example.test pinned
192.0.2.98  pinned.example.test
"""

# (name as typed, family) compared with the OS's getaddrinfo. Differences by design:
# AAAA of a name the hosts file has with IPv4 only (the hosts backend pins it: NODATA,
# where glibc asks DNS); a pinned name with a trailing dot (glibc's files source does not
# match "pinned.example.test.", so the OS asks DNS: a bypass of the pin that we close);
# AF_UNSPEC of names whose A and AAAA come from different search domains (glibc asks both
# types of each candidate together).
PINNED_NOT_GLIBC = {"pinned.example.test. A"}
COMPARED = [
    (name, family)
    for name in ("www.example.test", "www.example.test.", "www", "www.", "one.two", "one.two.example.test",
                 "alias.example.test", "v6only", "nope", "nope.example.test.", "short.example.test",
                 "localhost", "www.sub.example.test")
    for family in ("A", "AAAA")
] + [("pinned", "A"), ("pinned.example.test", "A"), ("pinned.example.test.", "A")]

CHILD = r"""
import asyncio, json, socket, sys, time
from asyncresolve import NegativeAnswer, Resolver, ResolveError
from asyncresolve.backends import CaresBackend, SystemBackend

COMPARED = json.loads(sys.argv[1])
FAMILY = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}

def os_answer(name, rdtype):
    try:
        infos = socket.getaddrinfo(name, None, FAMILY[rdtype], socket.SOCK_STREAM)
    except socket.gaierror as e:
        return ["gaierror"]
    return sorted({i[4][0] for i in infos})

async def main():
    out = {"ours": {}, "os": {}}
    async with Resolver(timeout=5) as r:
        for name, rdtype in COMPARED:
            key = f"{name} {rdtype}"
            try:
                a = await r.resolve(name, rdtype)
                out["ours"][key] = {"addresses": sorted(a.addresses), "source": a.source, "ttl": a.ttl,
                                    "ttl_known": a.ttl_known, "name": a.name}
            except ResolveError as e:
                out["ours"][key] = {"error": type(e).__name__, "ttl": getattr(e, "ttl", None),
                                    "negative": isinstance(e, NegativeAnswer)}
            out["os"][key] = await asyncio.to_thread(os_answer, name, rdtype)
        system = next(b for b in r.backends if isinstance(b, SystemBackend))
        cares = next(b for b in r.backends if isinstance(b, CaresBackend))
        out["chain"] = [b.name for b in r.backends]
        out["system_engaged"] = system.engaged
        out["search"], out["ndots"] = list(cares.search or ()), cares.ndots
        mx = await r.resolve("mail.example.test", "MX")
        out["mx"] = [mx.source, mx.ttl, mx.ttl_known]
        before = r.stats.upstream_lookups
        await asyncio.sleep(2.5)  # past the 2 s TTL of short.example.test
        again = await r.resolve("short.example.test", "A")
        out["short_again"] = [again.from_cache, r.stats.upstream_lookups - before]
    print(json.dumps(out))

asyncio.run(main())
"""


async def run_child(tmp_path: Path, lab: DNSLab, nsswitch: str, resolv_extra: str = "",
                    host_conf: str = "multi on\n") -> dict[str, Any]:
    address, port = lab.stub_server
    assert port == 53
    assert address.startswith("127.")
    files = {
        "resolv.conf": f"nameserver {address}\n{resolv_extra}options timeout:1 attempts:2\n",
        "nsswitch.conf": f"passwd: files\nhosts: {nsswitch}\nnetworks: files\n",
        "hosts": HOSTS,
        "host.conf": host_conf,
    }
    mounts = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        mounts.append(f'mount --bind "{tmp_path / name}" /etc/{name}')
    (tmp_path / "child.py").write_text(CHILD)
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               " && ".join(mounts) + ' && exec "$0" "$@"', sys.executable, str(tmp_path / "child.py"),
               json.dumps(COMPARED)]
    child = await asyncio.create_subprocess_exec(*command, stdout=PIPE, stderr=PIPE)
    stdout, stderr = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, stderr.decode()
    return json.loads(stdout)  # type: ignore[no-any-return]


def assert_same_as_getaddrinfo(out: dict[str, Any]) -> None:
    for key, theirs in out["os"].items():
        ours = out["ours"][key]
        if key in PINNED_NOT_GLIBC:
            assert ours["source"] == "hosts", (key, ours, theirs)
            assert theirs == ["192.0.2.66"], (key, ours, theirs)
            assert "192.0.2.99" in ours["addresses"]
            continue
        if theirs == ["gaierror"]:
            assert "error" in ours, (key, ours)
        else:
            assert ours.get("addresses") == theirs, (key, ours, theirs)


SEARCH = "search sub.example.test example.test\noptions ndots:2\n"


async def test_files_dns_chain_is_hosts_then_cares_with_real_ttls(tmp_path: Path) -> None:
    require_peer("unshare")
    require_root("port 53 and a private mount namespace")
    async with DNSLab(ZONES, port=53) as lab:
        out = await run_child(tmp_path, lab, "files dns", SEARCH)
    assert out["system_engaged"] is False  # stepped aside: hosts then c-ares
    assert out["search"] == ["sub.example.test.", "example.test."]
    assert out["ndots"] == 2
    assert_same_as_getaddrinfo(out)
    ours = out["ours"]
    www = ours["www.example.test A"]
    assert www["source"] == "cares"
    assert www["ttl_known"]
    assert 298 <= www["ttl"] <= 300
    assert ours["short.example.test A"]["ttl"] <= 2
    # the zone's negative TTL (SOA minimum 7), not a made-up 60
    assert ours["nope.example.test. A"] == {"error": "NXDomain", "ttl": 7, "negative": True}
    assert ours["pinned A"]["source"] == "hosts"
    assert ours["pinned A"]["addresses"] == ["192.0.2.99"]
    assert ours["pinned A"]["ttl_known"] is False  # the hosts file has no TTL
    # search and ndots as glibc: "www" is www.sub.example.test, "www." is never searched
    assert ours["www A"]["addresses"] == ["192.0.2.30"]
    assert ours["www A"]["name"] == "www.sub.example.test."
    assert ours["www. A"]["error"] == "NXDomain"
    assert ours["one.two A"]["addresses"] == ["192.0.2.40"]
    assert ours["v6only A"]["addresses"] == ["192.0.2.50"]
    assert ours["v6only AAAA"]["addresses"] == ["2001:db8::50"]
    assert out["mx"] == ["cares", 300, True]
    # a 2 s TTL is not served from the cache after 2.5 s
    assert out["short_again"] == [False, 1]


async def test_other_nss_sources_keep_the_system_backend_in_front(tmp_path: Path) -> None:
    require_peer("unshare")
    require_root("port 53 and a private mount namespace")
    async with DNSLab(ZONES, port=53) as lab:
        out = await run_child(tmp_path, lab, "files myhostname [NOTFOUND=return] dns", SEARCH)
    assert out["system_engaged"] is True
    assert_same_as_getaddrinfo(out)
    www = out["ours"]["www.example.test A"]
    assert www["source"] == "system"
    assert www["ttl_known"] is False
    assert out["ours"]["www A"]["addresses"] == ["192.0.2.30"]
    assert out["mx"] == ["cares", 300, True]  # the OS cannot answer MX: c-ares, real TTL


async def test_default_chain_without_search_list(tmp_path: Path) -> None:
    require_peer("unshare")
    require_root("port 53 and a private mount namespace")
    async with DNSLab(ZONES, port=53) as lab:
        out = await run_child(tmp_path, lab, "files dns")
    assert out["system_engaged"] is False
    assert out["ndots"] == 1
    assert_same_as_getaddrinfo(out)
    assert out["ours"]["www A"]["error"] == "NXDomain"


@pytest.mark.parametrize("resolv_extra", [
    "search sub.example.test example.test\noptions ndots:1\n",
    "search sub.example.test example.test\noptions ndots:0\n",
    "domain example.test\n",
    "search . example.test\n",
])
async def test_search_and_ndots_variants_equal_glibc(tmp_path: Path, resolv_extra: str) -> None:
    require_peer("unshare")
    require_root("port 53 and a private mount namespace")
    async with DNSLab(ZONES, port=53) as lab:
        out = await run_child(tmp_path, lab, "files dns", resolv_extra)
    assert out["system_engaged"] is False
    assert_same_as_getaddrinfo(out)
    assert out["ours"]["www.example.test A"]["source"] == "cares"


@pytest.mark.parametrize("host_conf", ["multi on\n", "multi off\n", ""])
async def test_host_conf_multi_as_glibc(tmp_path: Path, host_conf: str) -> None:
    require_peer("unshare")
    require_root("port 53 and a private mount namespace")
    async with DNSLab(ZONES, port=53) as lab:
        out = await run_child(tmp_path, lab, "files dns", host_conf=host_conf)
    assert_same_as_getaddrinfo(out)
    both = ["192.0.2.98", "192.0.2.99"] if host_conf == "multi on\n" else ["192.0.2.99"]
    assert out["ours"]["pinned.example.test A"]["addresses"] == both
