"""``DNSLab``: a whole DNS hierarchy of authoritative servers on loopback addresses."""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import dns.name
import dns.rdatatype
import dns.zone

from .addresses import LoopbackAllocator
from .hierarchy import NameServer, build_zones, nameserver_hostnames, origins_to_build, zone_to_text
from .server import Address, AuthServer, QueryRecord
from .zones import IndexedZone, ZoneSet, ZoneSource, parse_zone, to_name

PerZone = int | Mapping[str, int]
"""A count for every zone (``2``) or per zone (``{"example.test.": 2}``; missing zones get the default)."""


class DNSLab:
    """Root, TLD and zone servers built from zone texts, each on its own 127.x address.

    ``zones`` maps an origin (``"example.test."``) to zone-file text (relative
    names are relative to the origin; an SOA is added if missing) or a
    :class:`dns.zone.Zone`.  The lab synthesises the root zone and the TLD
    zones, delegates every zone from its parent with glue, and rewrites each
    zone's apex NS RRset (and the addresses of those NS names) so they point
    at the lab servers.  The final data is in :attr:`zones`.

    Options:

    ``port``
        ``None`` (default): one free high port shared by every server.  ``53``
        needs root (or CAP_NET_BIND_SERVICE) and is what real recursive
        resolvers (unbound...) need, since referrals carry addresses, not ports.
    ``servers_per_zone``
        How many servers serve each zone (int, or a mapping origin -> count,
        ``"."`` included).  Each has its own address and NS name.
    ``glueless``
        Origins whose NS names lie outside any zone on the delegation path
        (``ns1.example-test.hosts.lab.``), so the parent sends a referral
        without glue and the resolver must resolve the NS name first.
    ``lame``
        Per-zone count of extra NS entries served by lab servers that do *not*
        serve the zone (they answer REFUSED; set their ``faults.lame`` for an
        upward referral instead).  See :meth:`lame_servers_for`.
    ``unreachable``
        Per-zone count of extra NS entries whose address has nothing listening.
    ``seed``
        Seeds every server's ``faults.rng`` (server *i* gets ``seed + i``), so
        ``drop_rate`` decisions repeat from run to run.
    ``address_block``
        ``"127.X.Y"`` to use instead of a random block.
    ``infra_domain``
        Name of the lab's own zone holding root-server and glueless NS names.
    ``stub``
        Also start :attr:`stub`, one server answering for every zone.
    ``record_queries``
        Keep :attr:`queries` (turn off for long benchmarks; counters still work).

    Use ``async with DNSLab(zones) as lab`` in async code, ``with DNSLab(zones)
    as lab`` (the lab then runs in a background thread) in sync code, or
    :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        zones: Mapping[str, ZoneSource] | None = None,
        *,
        port: int | None = None,
        servers_per_zone: PerZone = 1,
        glueless: Iterable[str] = (),
        lame: PerZone | Iterable[str] = 0,
        unreachable: PerZone | Iterable[str] = 0,
        seed: int = 0,
        address_block: str | None = None,
        infra_domain: str = "lab.",
        stub: bool = True,
        record_queries: bool = True,
    ) -> None:
        self.infra = to_name(infra_domain)
        self._user_zones: dict[dns.name.Name, dns.zone.Zone] = {}
        for origin, source in (zones or {}).items():
            name = to_name(origin)
            if name == self.infra or name.is_subdomain(self.infra):
                raise ValueError(f"zone {name} collides with the lab's infra_domain {self.infra}; pass another")
            self._user_zones[name] = parse_zone(source, name)
        self.requested_port = port
        self.servers_per_zone = servers_per_zone
        self.glueless = {to_name(z) for z in glueless}
        if dns.name.root in self.glueless:
            raise ValueError("the root zone cannot be glueless")
        self.lame = _per_zone(lame)
        self.unreachable = _per_zone(unreachable)
        self.seed = seed
        self.address_block = address_block
        self.want_stub = stub
        self.record_queries = record_queries
        self.queries: list[QueryRecord] = []
        """Every message any lab server received, in order: ``(server, name, type, protocol)``."""
        self.nameservers: list[NameServer] = []
        """Every NS entry of every zone (including lame and unreachable ones)."""
        self.servers: list[AuthServer] = []
        """Every running server except the stub (zone servers, then lame servers)."""
        self.stub: AuthServer | None = None
        """The server answering for every zone (``None`` with ``stub=False``)."""
        self.port: int = 0
        """The port every lab server listens on (UDP and TCP)."""
        self._final_zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self._by_zone: dict[dns.name.Name, list[AuthServer]] = {}
        self._lame_by_zone: dict[dns.name.Name, list[AuthServer]] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------

    async def __aenter__(self) -> DNSLab:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __enter__(self) -> DNSLab:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    @property
    def running(self) -> bool:
        """True once started and until stopped."""
        return bool(self.servers)

    async def start(self) -> None:
        """Build the zones and start every server.

        If an address is taken, the lab retries in another random block
        (unless ``address_block`` was given).
        """
        if self.running:
            return
        attempts = 1 if self.address_block else 5
        for attempt in range(attempts):
            allocator = LoopbackAllocator(self.address_block)
            try:
                await self._start_once(allocator)
                return
            except OSError as exc:
                await self.stop()
                if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise

    async def stop(self) -> None:
        """Stop every server (idempotent)."""
        servers = [*self.servers, *([self.stub] if self.stub else [])]
        await asyncio.gather(*(server.stop() for server in servers))
        self.servers = []
        self.stub = None
        self._by_zone.clear()
        self._lame_by_zone.clear()

    def start_in_thread(self) -> DNSLab:
        """Start the lab on an event loop in a daemon thread; returns the lab.

        For sync code and subprocess-based tests.  Faults and counters may be
        used from the calling thread.  Call :meth:`stop_thread` when done.
        """
        if self._thread is not None:
            raise RuntimeError("lab already running in a thread")
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="DNSLab", daemon=True)
        thread.start()
        ready.wait()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result()
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            raise
        self._thread, self._loop = thread, loop
        return self

    def stop_thread(self) -> None:
        """Stop a lab started with :meth:`start_in_thread` and join its thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            self._thread = self._loop = None

    async def _start_once(self, allocator: LoopbackAllocator) -> None:
        self.nameservers = self._plan(allocator)
        self._final_zones = build_zones(self._user_zones, self.nameservers, infra=self.infra)
        indexed = {origin: IndexedZone(zone) for origin, zone in self._final_zones.items()}
        root_ns = indexed[dns.name.root].rrset(dns.name.root, dns.rdatatype.NS)
        port = self.requested_port or 0
        index = 0

        def make(zones: list[IndexedZone], ns: NameServer | None, **kw: Any) -> AuthServer:
            nonlocal index
            server = AuthServer(
                ZoneSet(zones),
                ns.address if ns else allocator.allocate(),
                port,
                name=ns.hostname.to_text() if ns else "stub",
                upward_referral=root_ns,
                alt_host=allocator.allocate(),
                query_log=self.queries,
                record_queries=self.record_queries,
                **kw,
            )
            server.faults.seed(self.seed + index)
            index += 1
            return server

        for ns in self.nameservers:
            if ns.role == "unreachable":
                continue
            server = make([indexed[ns.zone]] if ns.role == "auth" else [], ns)
            await server.start()
            port = server.port  # the first server picks the port when none was requested
            self.servers.append(server)
            group = self._by_zone if ns.role == "auth" else self._lame_by_zone
            group.setdefault(ns.zone, []).append(server)
        if self.want_stub:
            self.stub = make(list(indexed.values()), None, recursion_available=True)
            await self.stub.start()
        self.port = port

    def _plan(self, allocator: LoopbackAllocator) -> list[NameServer]:
        plan: list[NameServer] = []
        for origin in origins_to_build(self._user_zones, self.infra):
            synthesized = origin not in self._user_zones
            counts = {
                "auth": self._count(self.servers_per_zone, origin, 1),
                "lame": self.lame.get(origin, 0),
                "unreachable": self.unreachable.get(origin, 0),
            }
            if counts["auth"] < 1:
                raise ValueError(f"zone {origin} needs at least one server")
            for role, count in counts.items():
                hostnames = nameserver_hostnames(
                    origin,
                    count,
                    role=role,
                    glueless=origin in self.glueless,
                    infra=self.infra,
                    existing=self._user_zones.get(origin),
                    synthesized=synthesized,
                )
                plan.extend(NameServer(origin, h, allocator.allocate(), role) for h in hostnames)
        return plan

    @staticmethod
    def _count(spec: PerZone, origin: dns.name.Name, default: int) -> int:
        if isinstance(spec, int):
            return spec
        return _per_zone(spec).get(origin, default)

    # -- inspection -----------------------------------------------------

    def _require_running(self) -> None:
        if not self.running:
            raise RuntimeError("the lab is not running; use 'async with DNSLab(...)' or start()")

    @property
    def root_hints(self) -> list[Address]:
        """``(ip, port)`` of every root server, for an iterative resolver."""
        return [server.address for server in self.servers_for(".")]

    def root_hints_text(self) -> str:
        """The root hints in zone-file format (like ``named.root``, e.g. for unbound's ``root-hints:``)."""
        self._require_running()
        lines = []
        for ns in self.nameservers:
            if ns.zone == dns.name.root and ns.role == "auth":
                lines.append(f".\t3600000\tIN\tNS\t{ns.hostname}")
                lines.append(f"{ns.hostname}\t3600000\tIN\tA\t{ns.address}")
        return "\n".join(lines) + "\n"

    @property
    def stub_server(self) -> Address:
        """``(ip, port)`` of :attr:`stub`, which answers for every zone (for stub clients)."""
        self._require_running()
        if self.stub is None:
            raise RuntimeError("the lab was created with stub=False")
        return self.stub.address

    @property
    def zones(self) -> dict[str, str]:
        """Origin (``"example.test."``) -> final zone text, root and TLD zones included."""
        self._require_running()
        return {origin.to_text(): zone_to_text(zone) for origin, zone in self._final_zones.items()}

    def servers_for(self, zone: str | dns.name.Name) -> list[AuthServer]:
        """The servers serving *zone* (``"."`` for the root servers)."""
        self._require_running()
        origin = to_name(zone)
        if origin not in self._by_zone:
            raise KeyError(f"no lab zone {origin}; zones: {sorted(str(o) for o in self._by_zone)}")
        return list(self._by_zone[origin])

    def server_for(self, zone: str | dns.name.Name, index: int = 0) -> AuthServer:
        """The *index*-th server of *zone*; change its ``faults`` to inject faults."""
        return self.servers_for(zone)[index]

    def lame_servers_for(self, zone: str | dns.name.Name) -> list[AuthServer]:
        """The lame servers listed in *zone*'s NS RRset (see the ``lame`` option)."""
        self._require_running()
        return list(self._lame_by_zone.get(to_name(zone), []))

    def nameservers_for(self, zone: str | dns.name.Name) -> list[NameServer]:
        """NS entries of *zone*: host name, address and role."""
        origin = to_name(zone)
        return [ns for ns in self.nameservers if ns.zone == origin]

    @property
    def query_count(self) -> int:
        """Messages received by all servers, the stub included."""
        return sum(s.query_count for s in self.servers) + (self.stub.query_count if self.stub else 0)

    def reset_counters(self) -> None:
        """Zero every server's counters and clear :attr:`queries`."""
        for server in [*self.servers, *([self.stub] if self.stub else [])]:
            server.reset_counters()
        self.queries.clear()

    def reset_faults(self) -> None:
        """Switch every fault off on every server."""
        for server in [*self.servers, *([self.stub] if self.stub else [])]:
            server.faults.reset()

    def queries_for(self, name: str, rdtype: str | None = None) -> list[QueryRecord]:
        """Entries of :attr:`queries` for *name* (case-insensitive; final dot optional) and type."""
        wanted = to_name(name).to_text().lower()
        return [q for q in self.queries if q.name == wanted and (rdtype is None or q.type == rdtype.upper())]


def _per_zone(spec: PerZone | Iterable[str]) -> dict[dns.name.Name, int]:
    if isinstance(spec, int):
        if spec:
            raise TypeError("give lame/unreachable as a mapping origin -> count or a list of origins")
        return {}
    if isinstance(spec, Mapping):
        return {to_name(origin): int(count) for origin, count in spec.items()}
    return {to_name(origin): 1 for origin in spec}
