"""``Resolver.getaddrinfo`` equals the C library's ``getaddrinfo``, as a property over a grid.

tests/gai_grid.py runs in a subprocess with its own mount namespace: a test hosts file,
``hosts: files dns`` and a resolv.conf naming a lab server on port 53 of a 127.x address are
bind-mounted for glibc, and the resolver's chain is the same file plus c-ares to the same
server. Thousands of argument combinations (hosts from the file, from DNS, numeric forms
such as ``127.1``/``0x7f.1``/``2130706433``/``fe80::1%lo``, odd names; int/str/bytes ports and
service names; families, socket types, protocols and flags) must give the same entries in
an order the RFC 6724 rules allow, or the same ``gaierror`` code.

The AI_ADDRCONFIG scenarios add a network namespace with only loopback and the addresses
given (an IPv4-only host: AAAA answers are dropped under AI_ADDRCONFIG and IPv4 comes first
without it; loopback only; link-local IPv6 only; dual stack), exactly as glibc decides.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asyncresolve.testing.peers import require_peer, require_root

GRID = Path(__file__).with_name("gai_grid.py")


def run_grid(*command: str) -> dict:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _need_tools() -> None:
    require_root("mount and network namespaces, a lab server on port 53")
    for tool in ("unshare", "mount", "ip"):
        if shutil.which(tool) is None:
            require_peer(tool)  # fails under CI, skips elsewhere


def test_getaddrinfo_equals_the_c_library_over_a_grid():
    _need_tools()
    report = run_grid("unshare", "--mount", "--propagation", "private", sys.executable, str(GRID),
                      "grid", "20261126", "3000")
    assert report["cases"] > 4000
    assert report["mismatches"] == [], json.dumps(report["mismatches"][:10], indent=1)


@pytest.mark.parametrize("addresses", [
    ["192.0.2.9/24"],                  # IPv4-only host: no AAAA under AI_ADDRCONFIG, IPv4 first
    [],                                # loopback only: glibc keeps both families for AF_UNSPEC
    ["fe80::9/64"],                    # link-local IPv6 only: it counts, as glibc counts it
    ["192.0.2.9/24", "fd00::9/64"],    # dual stack on a ULA
], ids=["ipv4-only", "loopback-only", "link-local-v6", "dual-stack-ula"])
def test_addrconfig_and_order_equal_the_c_library(addresses):
    _need_tools()
    added = "".join(f"ip addr add {a} dev lo && " for a in addresses)
    script = f"ip link set lo up && {added}exec {sys.executable} {GRID} addrconfig 0 0"
    report = run_grid("unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script)
    assert report["cases"] == 36
    assert report["mismatches"] == [], json.dumps(report["mismatches"][:10], indent=1)
