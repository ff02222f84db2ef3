"""unbound, the recursive peer: iterates from the lab's root servers, nothing local in the way."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from ._common import (
    PeerError,
    PeerMissing,
    _check_loopback,
    _family,
    _fmt_endpoint,
    find_peer_binary,
)
from ._process import _Peer, _quote, _run_check

#: Zones unbound (1.17) answers itself unless told ``nodefault``
#: (unbound.conf(5), "default zones"); the RFC 1918 / AS112 reverse zones are
#: released with ``unblock-lan-zones`` instead.
UNBOUND_DEFAULT_LOCAL_ZONES: tuple[str, ...] = (
    "localhost.",
    "127.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "home.arpa.",
    "onion.",
    "test.",
    "invalid.",
    "0.in-addr.arpa.",
    "254.169.in-addr.arpa.",
    "2.0.192.in-addr.arpa.",
    "100.51.198.in-addr.arpa.",
    "113.0.203.in-addr.arpa.",
    "255.255.255.255.in-addr.arpa.",
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "8.b.d.0.1.0.0.2.ip6.arpa.",
)


HintsArg = Sequence[tuple[str, int] | str]


def _normalise_hints(root_hints: HintsArg) -> list[str]:
    addresses: list[str] = []
    for hint in root_hints:
        if isinstance(hint, str):
            address, port = hint, 53
        else:
            address, port = hint[0], int(hint[1])
        _check_loopback(address)
        if port != 53:
            raise ValueError(
                f"root hint {address}@{port}: unbound queries root hints (and every "
                "server a referral names) on port 53 only; run the lab with port=53"
            )
        addresses.append(address)
    if not addresses:
        raise ValueError("Unbound needs at least one root hint")
    return addresses


def root_hints_text(addresses: Sequence[str]) -> str:
    """A root hints file for unbound naming one made-up server per address.

    Only the addresses matter: unbound primes (``. NS``) from them and then
    uses the NS set and glue the lab root returns.
    """
    lines = []
    for index, address in enumerate(addresses):
        name = f"hint{index}.root-hints.invalid."
        rrtype = "AAAA" if _family(address) == socket.AF_INET6 else "A"
        lines.append(f".\t3600000\tIN\tNS\t{name}")
        lines.append(f"{name}\t3600000\tIN\t{rrtype}\t{address}")
    return "\n".join(lines) + "\n"


class Unbound(_Peer):
    """unbound as a recursive resolver whose root is the lab's root servers.

    :param root_hints: lab root servers as ``(ip, port)`` pairs or bare IPs;
        the port must be 53, since unbound cannot be told other ports for the
        servers referrals name.
    :param address: loopback address to listen on; default a random 127.x.y.z.
    :param port: default 53; ``None`` picks a free port (the listening port
        may be anything, only the upstream side is fixed to 53).
    :param local_zones_nodefault: zones unbound would answer locally that
        are handed back to recursion; default all of
        :data:`UNBOUND_DEFAULT_LOCAL_ZONES`.
    :param qname_minimisation: unbound's default (on) is kept; note that it
        makes unbound ask for ``_.name A`` / NS along the way, so the lab's
        servers see more queries than the names asked.
    :param extra_server_config: raw lines appended to ``server:``.

    Validation is off (``module-config: "iterator"``, no trust anchors), no
    forwarders, ``do-not-query-localhost: no`` so it talks to 127.x servers,
    ``cache-min-ttl: 0``, no prefetch, one thread.  A control socket (unix
    domain, no certificates) allows :meth:`control` / :meth:`flush`.
    """

    binary_name: ClassVar[str] = "unbound"

    def __init__(
        self,
        root_hints: HintsArg,
        address: str | None = None,
        port: int | None = 53,
        *,
        local_zones_nodefault: Iterable[str] = UNBOUND_DEFAULT_LOCAL_ZONES,
        qname_minimisation: bool = True,
        extra_server_config: Iterable[str] = (),
        startup_timeout: float = 10.0,
        workdir: str | os.PathLike[str] | None = None,
        verbosity: int = 1,
    ) -> None:
        self.root_hints: list[str] = _normalise_hints(root_hints)
        self.local_zones_nodefault = [dns.name.from_text(zone).to_text() for zone in local_zones_nodefault]
        self.qname_minimisation = qname_minimisation
        self.extra_server_config = list(extra_server_config)
        self._checkconf = find_peer_binary("unbound-checkconf")
        try:
            self._control_bin: str | None = find_peer_binary("unbound-control")
        except PeerMissing:
            self._control_bin = None
        super().__init__(
            address,
            port,
            startup_timeout=startup_timeout,
            workdir=workdir,
            verbosity=verbosity,
        )

    @property
    def control_socket(self) -> Path:
        """Unix socket of unbound's remote control."""
        if self.workdir is None:
            raise PeerError("Unbound has not been started")
        return self.workdir / "control.sock"

    def _write_files(self, workdir: Path) -> Path:
        hints = workdir / "root.hints"
        hints.write_text(root_hints_text(self.root_hints))
        any_v6 = any(_family(a) == socket.AF_INET6 for a in [*self.root_hints, self.address])
        any_v4 = any(_family(a) == socket.AF_INET for a in [*self.root_hints, self.address])
        lines = [
            "server:",
            f"    interface: {_fmt_endpoint(self.address, self.port)}",
            f"    port: {self.port}",
            f"    do-ip4: {'yes' if any_v4 else 'no'}",
            f"    do-ip6: {'yes' if any_v6 else 'no'}",
            "    do-udp: yes",
            "    do-tcp: yes",
            '    username: ""',
            '    chroot: ""',
            f"    directory: {_quote(workdir)}",
            f"    pidfile: {_quote(workdir / 'unbound.pid')}",
            "    use-syslog: no",
            '    logfile: ""',
            "    log-time-ascii: yes",
            f"    verbosity: {self.verbosity}",
            "    num-threads: 1",
            "    so-reuseport: no",
            # Room for bulk tests: with Debian's 128 queries per thread, a burst of 1,000
            # distinct names makes unbound drop queries and clients time out.
            "    outgoing-range: 4096",
            "    num-queries-per-thread: 1024",
            "    access-control: 127.0.0.0/8 allow",
            "    access-control: ::1/128 allow",
            "    do-not-query-localhost: no",
            f"    root-hints: {_quote(hints)}",
            '    module-config: "iterator"',
            "    trust-anchor-signaling: no",
            "    root-key-sentinel: no",
            "    harden-referral-path: no",
            f"    qname-minimisation: {'yes' if self.qname_minimisation else 'no'}",
            "    prefetch: no",
            "    prefetch-key: no",
            "    cache-min-ttl: 0",
            "    serve-expired: no",
            "    unblock-lan-zones: yes",
            "    insecure-lan-zones: yes",
            # Servers the lab stops are forgotten quickly rather than for 15 min.
            "    infra-host-ttl: 60",
            *(f"    local-zone: {_quote(zone)} nodefault" for zone in self.local_zones_nodefault),
            *(f"    {line}" for line in self.extra_server_config),
            "remote-control:",
            f"    control-enable: {'yes' if self._control_bin else 'no'}",
        ]
        if self._control_bin:
            lines += [
                f"    control-interface: {_quote(workdir / 'control.sock')}",
                "    control-use-cert: no",
            ]
        config = workdir / "unbound.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _check_config(self, config: Path) -> None:
        _run_check([self._checkconf, str(config)], "unbound-checkconf")

    def _command(self, config: Path) -> list[str]:
        return [self.binary, "-d", "-c", str(config)]

    def _probes(self) -> list[dns.message.Message]:
        # Answered by unbound itself, without recursion: readiness does not
        # depend on the lab being up, and leaves the cache cold.
        return [dns.message.make_query("id.server.", dns.rdatatype.TXT, dns.rdataclass.CH)]

    def control(self, *args: str, timeout: float = 10.0) -> str:
        """Run ``unbound-control`` against this instance; return its output."""
        if self._control_bin is None:
            raise PeerMissing("unbound-control")
        if not self.running:
            raise PeerError(f"{self!r} is not running")
        argv = [self._control_bin, "-c", str(self.config_path), *args]
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise PeerError(f"{' '.join(argv)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result.stdout

    def flush_sync(self) -> None:
        """Empty every cache (message, RRset, infra) without restarting."""
        self.control("reload")

    async def flush(self) -> None:
        """Async :meth:`flush_sync`."""
        await asyncio.to_thread(self.flush_sync)
