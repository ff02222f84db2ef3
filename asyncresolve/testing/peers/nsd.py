"""NSD, the authoritative peer: serves ``{origin: zone text}`` on one loopback address."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
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

from ._common import _family, _fmt_endpoint, find_peer_binary
from ._process import _Peer, _quote, _run_check


def _zone_file_name(origin: str, index: int) -> str:
    stem = origin.rstrip(".") or "root"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    return f"{index:03d}-{safe}.zone"


class NSD(_Peer):
    """NSD serving *zones* authoritatively on ``address@port``.

    :param zones: ``{origin: zone text}``; the text may rely on the origin
        (``@``, relative names) without a ``$ORIGIN`` line.
    :param address: a loopback address; default a random free 127.x.y.z.
    :param port: default 53 (needs root); ``None`` picks a free port.
    :param minimal_responses: NSD's ``minimal-responses`` (default off: NSD
        adds the zone's NS RRset to positive answers and glue as additional).
    :param extra_server_config: raw lines appended to the ``server:`` clause.

    Rate limiting is off (``rrl-ratelimit: 0``): Debian's NSD enables it and
    would truncate or drop rapid test queries.  Each zone file is checked with
    ``nsd-checkzone`` and the config with ``nsd-checkconf`` before start;
    readiness means every zone's SOA is answered authoritatively.
    """

    binary_name: ClassVar[str] = "nsd"

    def __init__(
        self,
        zones: Mapping[str, str],
        address: str | None = None,
        port: int | None = 53,
        *,
        minimal_responses: bool = False,
        extra_server_config: Iterable[str] = (),
        startup_timeout: float = 10.0,
        workdir: str | os.PathLike[str] | None = None,
        verbosity: int = 1,
    ) -> None:
        if not zones:
            raise ValueError("NSD needs at least one zone")
        self.zones: dict[str, str] = {dns.name.from_text(origin).to_text(): text for origin, text in zones.items()}
        self.minimal_responses = minimal_responses
        self.extra_server_config = list(extra_server_config)
        self._checkconf = find_peer_binary("nsd-checkconf")
        self._checkzone = find_peer_binary("nsd-checkzone")
        super().__init__(
            address,
            port,
            startup_timeout=startup_timeout,
            workdir=workdir,
            verbosity=verbosity,
        )

    def _write_files(self, workdir: Path) -> Path:
        zone_dir = workdir / "zones"
        zone_dir.mkdir(exist_ok=True)
        self.zone_files: dict[str, Path] = {}
        zone_clauses: list[str] = []
        for index, (origin, text) in enumerate(self.zones.items()):
            path = zone_dir / _zone_file_name(origin, index)
            path.write_text(text if text.endswith("\n") else text + "\n")
            self.zone_files[origin] = path
            zone_clauses += [
                "zone:",
                f"    name: {_quote(origin)}",
                f"    zonefile: {_quote(path)}",
            ]
        server = [
            "server:",
            f"    ip-address: {_fmt_endpoint(self.address, self.port)}",
            f"    port: {self.port}",
            f"    do-ip4: {'yes' if _family(self.address) == socket.AF_INET else 'no'}",
            f"    do-ip6: {'yes' if _family(self.address) == socket.AF_INET6 else 'no'}",
            "    server-count: 1",
            "    reuseport: no",
            f"    verbosity: {self.verbosity}",
            '    username: ""',
            '    chroot: ""',
            '    database: ""',
            f"    zonesdir: {_quote(zone_dir)}",
            f"    zonelistfile: {_quote(workdir / 'zone.list')}",
            f"    xfrdfile: {_quote(workdir / 'xfrd.state')}",
            f"    xfrdir: {_quote(workdir)}",
            f"    pidfile: {_quote(workdir / 'nsd.pid')}",
            # Never write zone data back into our files.
            "    zonefiles-write: 0",
            "    rrl-ratelimit: 0",
            "    rrl-whitelist-ratelimit: 0",
            "    hide-version: no",
            "    refuse-any: no",
            f"    minimal-responses: {'yes' if self.minimal_responses else 'no'}",
            "    tcp-count: 64",
            *(f"    {line}" for line in self.extra_server_config),
            "remote-control:",
            "    control-enable: no",
        ]
        config = workdir / "nsd.conf"
        config.write_text("\n".join(server + zone_clauses) + "\n")
        return config

    def _check_config(self, config: Path) -> None:
        _run_check([self._checkconf, str(config)], "nsd-checkconf")
        for origin, path in self.zone_files.items():
            _run_check([self._checkzone, origin, str(path)], f"nsd-checkzone {origin}")

    def _command(self, config: Path) -> list[str]:
        return [self.binary, "-d", "-c", str(config)]

    def _probes(self) -> list[dns.message.Message]:
        return [dns.message.make_query(origin, dns.rdatatype.SOA) for origin in self.zones]

    def _probe_ok(self, query: dns.message.Message, response: dns.message.Message) -> bool:
        return response.rcode() == dns.rcode.NOERROR and bool(response.flags & dns.flags.AA) and bool(response.answer)


