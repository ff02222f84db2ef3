"""The hosts file backend: A, AAAA and PTR from ``/etc/hosts`` (or any file in that format).

A name absent from the file is "not mine" and passes to the next backend. A name present
in the file is the file's: asking it for a type it lacks (AAAA of a name listed with an
IPv4 address only) is NODATA, as systemd-resolved answers, so that a lookup does not leak
to DNS for a name the administrator pinned locally.

The file is re-read when its modification time or size changes; that is checked at most
once every ``reload_interval`` seconds, in a worker thread, never on every query.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from dataclasses import dataclass, field

import anyio

from ..answer import Answer
from ..errors import InvalidName, NoAnswer
from ..names import address_from_reverse_name, normalize_name
from ..records import AAAARecord, ARecord, PTRRecord, Record
from .base import Backend, NotMine, Query

log = logging.getLogger(__name__)

DEFAULT_HOSTS_PATH = r"C:\Windows\System32\drivers\etc\hosts" if os.name == "nt" else "/etc/hosts"


@dataclass
class HostsTable:
    """The parsed content of a hosts file."""

    #: name -> (canonical name, IPv4 addresses, IPv6 addresses), in file order
    names: dict[str, tuple[str, list[str], list[str]]] = field(default_factory=dict)
    #: address -> names, canonical first
    addresses: dict[str, list[str]] = field(default_factory=dict)
    #: line numbers of the lines that were skipped as malformed
    malformed: list[int] = field(default_factory=list)


def parse_hosts(text: str) -> HostsTable:
    """Parse hosts-file text. Malformed lines are skipped and counted, never fatal."""
    table = HostsTable()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            table.malformed.append(number)
            continue
        try:
            address = ipaddress.ip_address(fields[0].split("%", 1)[0])
            names = [normalize_name(n) for n in fields[1:]]
        except (ValueError, InvalidName):
            table.malformed.append(number)
            continue
        if address.version == 6 and address.ipv4_mapped is None:
            text_address = address.compressed
        elif address.version == 6:
            text_address = str(address.ipv4_mapped)  # ::ffff:a.b.c.d is the IPv4 address
        else:
            text_address = str(address)
        canonical = names[0]
        for name in names:
            entry = table.names.setdefault(name, (canonical, [], []))
            family = entry[1] if ":" not in text_address else entry[2]
            if text_address not in family:
                family.append(text_address)
        known = table.addresses.setdefault(text_address, [])
        known.extend(n for n in names if n not in known)
    return table


class HostsBackend(Backend):
    """Answers A, AAAA and PTR from a hosts file.

    :param path: the file; default the OS's (``/etc/hosts``).
    :param ttl: TTL given to its answers (the file has none); also the NODATA TTL.
    :param reload_interval: at most this often, the file's mtime is checked for a reload.
    """

    name = "hosts"
    supported_types = frozenset({"A", "AAAA", "PTR"})

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_HOSTS_PATH, *, ttl: int = 5,
                 reload_interval: float = 5.0) -> None:
        self.path = os.fspath(path)
        self.ttl = ttl
        self.reload_interval = reload_interval
        self.table = HostsTable()
        self._signature: tuple[int, int] | None = None
        self._next_check = 0.0
        self.loads = 0

    # -- loading ------------------------------------------------------------------
    def load(self) -> bool:
        """Re-read the file if it changed since the last load (blocking; runs in a thread)."""
        try:
            st = os.stat(self.path)
            signature = (st.st_mtime_ns, st.st_size)
            if signature == self._signature:
                return False
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            if self._signature != (-1, -1):
                log.warning("hosts file %s unreadable: %s", self.path, exc)
            self.table, self._signature = HostsTable(), (-1, -1)
            return True
        table = parse_hosts(text)
        if table.malformed:
            log.warning("hosts file %s: skipped %d malformed line(s), first at line %d",
                        self.path, len(table.malformed), table.malformed[0])
        self.table, self._signature = table, signature
        self.loads += 1
        return True

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.reload_interval
        await anyio.to_thread.run_sync(self.load)

    # -- answering ------------------------------------------------------------------
    async def resolve(self, query: Query) -> Answer:
        await self._refresh()
        if query.rdtype == "PTR":
            return self._reverse(query)
        entry = self.table.names.get(query.name)
        if entry is None:
            raise NotMine
        canonical, ipv4, ipv6 = entry
        records: list[Record]
        if query.rdtype == "A":
            records = [ARecord(query.name, self.ttl, a) for a in ipv4]
        else:
            records = [AAAARecord(query.name, self.ttl, a) for a in ipv6]
        if not records:
            raise NoAnswer(name=query.name, rdtype=query.rdtype, source=self.name, ttl=self.ttl)
        return Answer(query.name, query.rdtype, records, self.name, canonical_name=canonical,
                      ttl_known=False)

    def _reverse(self, query: Query) -> Answer:
        address = address_from_reverse_name(query.name)
        names = self.table.addresses.get(address) if address else None
        if not names:
            raise NotMine
        records: list[Record] = [PTRRecord(query.name, self.ttl, n) for n in names]
        return Answer(query.name, "PTR", records, self.name, ttl_known=False)
