"""The OS path end to end: getaddrinfo in a private mount namespace whose resolv.conf
points at unbound, which resolves from the lab's root. Nothing reaches the machine's real
nameserver: the namespace's resolv.conf is the only one the child process sees."""

import asyncio
import json
import sys
from asyncio.subprocess import PIPE

from asyncresolve.testing import DNSLab
from asyncresolve.testing.peers import Unbound, require_peer, require_root

ZONES = {
    "example.test.": """
        @    3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300
        @    3600 IN NS  ns1
        ns1  3600 IN A   127.0.0.1
        www  60   IN A   192.0.2.10
        www  60   IN AAAA 2001:db8::10
        alias 60  IN CNAME www
    """,
}

CHILD = """
import asyncio, json, sys
from asyncresolve import Resolver, ResolveError
from asyncresolve.backends import SystemBackend

async def main():
    out = {}
    async with Resolver([SystemBackend()], timeout=5) as r:
        for name, rdtype in [("www.example.test", "A"), ("www.example.test", "AAAA"),
                             ("alias.example.test", "A"), ("nope.example.test", "A")]:
            try:
                a = await r.resolve(name, rdtype)
                out[f"{name} {rdtype}"] = [a.source, a.canonical_name, [x.address for x in a.records]]
            except ResolveError as e:
                out[f"{name} {rdtype}"] = [type(e).__name__]
    print(json.dumps(out))

asyncio.run(main())
"""


async def test_system_backend_resolves_lab_names_through_unbound(tmp_path):
    require_peer("unbound", "unshare")
    require_root("a private mount namespace")
    async with DNSLab(ZONES, port=53) as lab, Unbound(root_hints=lab.root_hints) as unbound:
        address, port = unbound.endpoint
        assert port == 53
        assert address.startswith("127.")
        conf = tmp_path / "resolv.conf"
        conf.write_text(f"nameserver {address}\noptions timeout:2 attempts:1\n")
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind "$1" /etc/resolv.conf && exec "$2" "$3"', "sh", str(conf), sys.executable,
                   str(script)]
        # asynchronously: the lab's servers run on this event loop and must keep answering
        child = await asyncio.create_subprocess_exec(*command, stdout=PIPE, stderr=PIPE)
        stdout, stderr = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == 0, stderr.decode()
        out = json.loads(stdout)
        assert out["www.example.test A"] == ["system", "www.example.test.", ["192.0.2.10"]]
        assert out["www.example.test AAAA"] == ["system", "www.example.test.", ["2001:db8::10"]]
        assert out["alias.example.test A"] == ["system", "www.example.test.", ["192.0.2.10"]]
        assert out["nope.example.test A"] == ["NXDomain"]
        # the lab saw unbound walk down from the root: the OS path really went through it
        assert lab.queries_for("www.example.test", "A") or lab.queries_for("www.example.test", "AAAA")
