"""The hosts file backend: A, AAAA and PTR from ``/etc/hosts`` (or any file in that format).

A name absent from the file is "not mine" and passes to the next backend. A name present
in the file is the file's: asking it for a type it lacks (AAAA of a name listed with an
IPv4 address only) is NODATA, as systemd-resolved answers, so that a lookup does not leak
to DNS for a name the administrator pinned locally. Names are compared in one canonical
form (lower case, absolute, presentation escapes decoded), so ``www.example.co\\109`` or
``WWW.example.com.`` is the pinned ``www.example.com``.

Loading: the first lookup waits for the first load (within its own deadline), so pinning
holds from the start. Later, at most every ``reload_interval`` seconds, one background
check (stat, then a parse if the file changed) runs in a worker thread while lookups keep
using the old table; the new table replaces it whole. The parse is linear in the file's
size and the table compact: a name with one address and no alias of its own costs one
dict entry pointing at a shared address string.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import anyio
import dns.exception
import dns.name

from ..answer import Answer
from ..errors import InvalidName, NoAnswer
from ..names import address_from_reverse_name, normalize_name
from ..records import AAAARecord, ARecord, PTRRecord, Record
from .base import Backend, NotMine, Query
from .nsswitch import DEFAULT_HOST_CONF, read_host_conf_multi

log = logging.getLogger(__name__)

DEFAULT_HOSTS_PATH = r"C:\Windows\System32\drivers\etc\hosts" if os.name == "nt" else "/etc/hosts"

# A plain LDH name (underscores allowed), labels of 1-63: normalize_name would give its
# lower-case form with a trailing dot; checked without calling it (a million names in an
# ad-block list would churn the resolver's name memo).
_PLAIN = re.compile(r"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")
_PLAIN_LOWER_RELATIVE = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}")

Entry = tuple[str, tuple[str, ...], tuple[str, ...]]
"""(canonical name, IPv4 addresses, IPv6 addresses), in file order."""


def canonical_name(name: str) -> str:
    """The form names are compared in: ``normalize_name``'s, with presentation escapes
    decoded (``\\109`` is ``m``; an escaped dot stays escaped: it is part of a label)."""
    if "\\" not in name:
        return name
    try:
        return dns.name.from_text(name).canonicalize().to_text()
    except (dns.exception.DNSException, ValueError):
        return name


def hosts_key(name: str) -> str:
    """``name`` from a hosts file or a query, in the canonical form; raises ``InvalidName``."""
    if _PLAIN.fullmatch(name) and len(name) - name.endswith(".") <= 253:
        key = name.lower()
        return key if key.endswith(".") else key + "."
    return canonical_name(normalize_name(name))


@dataclass
class HostsTable:
    """The parsed content of a hosts file (compact: see ``lookup``)."""

    #: name -> its address (a name with one address, canonical itself) or an ``Entry``
    names: dict[str, str | Entry] = field(default_factory=dict)
    #: address -> the names of the first line that lists it, canonical first
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: line numbers of the lines that were skipped as malformed (the first 1,000)
    malformed: list[int] = field(default_factory=list)
    #: how many lines were malformed
    malformed_count: int = 0

    def lookup(self, name: str) -> Entry | None:
        """(canonical name, IPv4 addresses, IPv6 addresses) of a canonical name, or None."""
        value = self.names.get(name)
        if value is None or value.__class__ is tuple:
            return value
        # the ignore below: the __class__ test (cheaper than isinstance here) does not narrow
        address: str = value  # type: ignore[assignment]
        return (name, (), (address,)) if ":" in address else (name, (address,), ())


def parse_hosts(text: str, *, multi: bool = True) -> HostsTable:
    """Parse hosts-file text. Malformed lines are skipped and counted, never fatal."""
    return parse_hosts_lines(text.splitlines(), multi=multi)


def parse_hosts_lines(lines: Iterable[str], *, multi: bool = True) -> HostsTable:
    """Parse hosts-file lines in one pass (linear in their size).

    With ``multi`` (host.conf's ``multi on``) a name listed on several lines has the
    addresses of all of them; without it, the first of each family only, as glibc.
    """
    table = HostsTable()
    names = table.names
    addresses = table.addresses
    parsed_addresses: dict[str, str | None] = {}  # the address text of a line, once per spelling
    growing: dict[str, tuple[str, list[str], list[str]]] = {}  # names with several addresses
    plain = _PLAIN_LOWER_RELATIVE.fullmatch
    for number, raw in enumerate(lines, start=1):
        # lower case once per line: names are compared lower-cased, addresses parse either way
        fields = (raw.split("#", 1)[0] if "#" in raw else raw).lower().split()
        if not fields:
            continue
        address = parsed_addresses.get(fields[0], "")
        if address == "":
            address = parsed_addresses[fields[0]] = _address(fields[0])
        keys: list[str] = []
        if address is not None and len(fields) >= 2:
            try:
                for name in fields[1:]:
                    if plain(name) and len(name) <= 253:
                        keys.append(name + ".")
                    else:
                        keys.append(hosts_key(name))
            except InvalidName:
                keys = []
        if not keys or address is None:
            table.malformed_count += 1
            if len(table.malformed) < 1000:
                table.malformed.append(number)
            continue
        canonical = keys[0]
        v6 = ":" in address
        for key in keys:
            known = names.get(key)
            if known is None:
                names[key] = address if key == canonical else ((canonical, (), (address,)) if v6
                                                              else (canonical, (address,), ()))
                continue
            entry = growing.get(key)
            if entry is None:
                if isinstance(known, str):
                    entry = (key, [], [known]) if ":" in known else (key, [known], [])
                else:
                    entry = (known[0], list(known[1]), list(known[2]))
                growing[key] = entry
            family = entry[2] if v6 else entry[1]
            if address not in family and (multi or not family):
                family.append(address)
        if address not in addresses:
            addresses[address] = tuple(dict.fromkeys(keys))
    for key, (canonical, ipv4, ipv6) in growing.items():
        names[key] = (canonical, tuple(ipv4), tuple(ipv6))
    return table


def _address(text: str) -> str | None:
    """The canonical text of a hosts-file address (zone id dropped, IPv4-mapped as IPv4)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # ::ffff:a.b.c.d is the IPv4 address
    return address.compressed


class HostsBackend(Backend):
    """Answers A, AAAA and PTR from a hosts file.

    :param path: the file; default the OS's (``/etc/hosts``).
    :param ttl: lifetime given to its answers (the file has no TTL: ``ttl_known`` is
        False); also the NODATA TTL.
    :param reload_interval: at most this often, the file's mtime and size are checked
        (in the background) for a reload.
    :param multi: a name on several lines gets the addresses of all of them; ``None``
        (default) reads ``multi`` from ``/etc/host.conf`` as glibc does.
    """

    name = "hosts"
    supported_types = frozenset({"A", "AAAA", "PTR"})

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_HOSTS_PATH, *, ttl: int = 5,
                 reload_interval: float = 5.0, multi: bool | None = None) -> None:
        self.path = os.fspath(path)
        self.ttl = ttl
        self.reload_interval = reload_interval
        self.multi = multi
        self.table = HostsTable()
        self.loads = 0
        self._signature: tuple[int, int] | None = None
        self._next_check = 0.0
        self._loaded = False  # a first load (or the finding that there is no file) happened
        self._checking: asyncio.Task[None] | None = None
        self._load_lock = threading.Lock()  # one parse at a time, whatever the loop

    # -- loading ------------------------------------------------------------------
    def load(self) -> bool:
        """Re-read the file if it changed since the last load (blocking; runs in a thread).

        The new table replaces the old one whole, only once it is complete."""
        with self._load_lock:
            try:
                return self._load()
            finally:
                self._loaded = True

    def _load(self) -> bool:
        try:
            st = os.stat(self.path)
            signature = (st.st_mtime_ns, st.st_size)
            if signature == self._signature:
                return False
            multi = read_host_conf_multi(DEFAULT_HOST_CONF) if self.multi is None else self.multi
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                table = parse_hosts_lines(handle, multi=multi)
        except OSError as exc:
            if self._signature != (-1, -1):
                log.warning("hosts file %s unreadable: %s", self.path, exc)
            self.table, self._signature = HostsTable(), (-1, -1)
            return True
        if table.malformed_count:
            log.warning("hosts file %s: skipped %d malformed line(s), first at line %d",
                        self.path, table.malformed_count, table.malformed[0])
        self.table, self._signature = table, signature
        self.loads += 1
        return True

    async def reload(self) -> bool:
        """Check the file now and wait for the check (and the parse, if it changed)."""
        self._next_check = time.monotonic() + self.reload_interval
        return await anyio.to_thread.run_sync(self.load)

    async def _refresh(self) -> None:
        """The first call waits for the first load; later ones start at most one
        background check every ``reload_interval`` and never wait for it."""
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        task = self._checking
        idle = task is None or task.done() or task.get_loop() is not loop
        if idle and (now >= self._next_check or not self._loaded):
            self._next_check = now + self.reload_interval
            task = self._checking = loop.create_task(self._check())
        if not self._loaded:
            assert task is not None
            await asyncio.shield(task)  # the chain's deadline bounds this wait

    async def _check(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.load)
        except Exception:  # never fatal: the old table stays; retried at the next interval
            log.exception("hosts file %s: reload failed", self.path)

    async def aclose(self) -> None:
        """Wait for a check or parse in flight (a worker thread cannot be stopped), so that
        nothing of the backend runs afterwards."""
        task = self._checking
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(task)

    # -- answering ------------------------------------------------------------------
    async def resolve(self, query: Query) -> Answer:
        if not self._loaded or time.monotonic() >= self._next_check:
            await self._refresh()
        table = self.table
        name = canonical_name(query.name)
        if query.rdtype == "PTR":
            return self._reverse(query, table, name)
        entry = table.lookup(name)
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

    def _reverse(self, query: Query, table: HostsTable, name: str) -> Answer:
        address = address_from_reverse_name(name)
        names = table.addresses.get(address) if address else None
        if not names:
            raise NotMine
        records: list[Record] = [PTRRecord(query.name, self.ttl, n) for n in names]
        return Answer(query.name, "PTR", records, self.name, ttl_known=False)
