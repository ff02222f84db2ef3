"""Infrastructure state: delegations, name-server addresses, lame servers.

Everything lives in the resolver's shared ``TTLCache`` under keys that start with
``"iterative"`` (they cannot collide with the answer keys ``(name, rdtype, "IN")``):

* ``("iterative", "zone-ns", zone)`` → ``Delegation`` (NS names and in-bailiwick glue),
  for the TTL of the NS RRset (and of its glue);
* ``("iterative", "addr", name, "A" | "AAAA")`` → tuple of IP strings found by
  resolving a name server's name (glueless delegations), for the records' TTL;
* ``("iterative", "lame", zone, ip, port)`` → ``Lameness``: how often the server failed
  the zone in a row and until when it is held down (a short hold-down that doubles with
  each failure, from ``lame_hold`` up to ``lame_ttl``; a good answer clears it). One bad
  packet never takes a server out for long, and a zone's last server is still probed.

Only data that the engine accepted as in bailiwick ever reaches this module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .servers import ServerAddr, ServerStats


@dataclass(slots=True)
class Lameness:
    """Consecutive failures of one server for one zone and the end of its hold-down."""

    count: int
    until: float


class InfraCache(Protocol):
    """The part of ``asyncresolve.cache.TTLCache`` this backend uses."""

    def get(self, key: Any) -> Any: ...

    def put(self, key: Any, value: Any, ttl: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Delegation:
    """A zone cut: the zone's name servers and what is known of their addresses.

    ``glue`` maps NS names to IP addresses taken from the referral's additional
    section (only names in the bailiwick of the delegating zone). ``hints`` are fixed
    ``(ip, port)`` servers (the root hints), used as they are.
    """

    zone: str
    ns_names: tuple[str, ...]
    glue: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hints: tuple[ServerAddr, ...] = ()


def is_subdomain(name: str, zone: str) -> bool:
    """``name`` is ``zone`` or below it (both lower-case, absolute)."""
    return zone == "." or name == zone or name.endswith("." + zone)


def is_loopback(ip: str) -> bool:
    known = _loopback_memo.get(ip)
    if known is None:
        try:
            known = ipaddress.ip_address(ip).is_loopback
        except ValueError:
            known = False
        if len(_loopback_memo) >= 4096:
            _loopback_memo.clear()
        _loopback_memo[ip] = known
    return known


_loopback_memo: dict[str, bool] = {}  # asked before every query sent: parse each text once


class Infrastructure:
    """Root hints, the infrastructure cache and server statistics of one backend."""

    def __init__(
        self,
        root_hints: Sequence[ServerAddr],
        *,
        cache: InfraCache,
        port: int = 53,
        stats: ServerStats | None = None,
        lame_ttl: float = 900.0,
        lame_hold: float = 2.0,
    ) -> None:
        if not root_hints:
            raise ValueError("at least one root hint is needed")
        self.root = Delegation(".", (), {}, tuple(root_hints))
        self.cache = cache
        self.port = port
        self.servers = stats if stats is not None else ServerStats()
        self.lame_ttl = lame_ttl
        self.lame_hold = min(lame_hold, lame_ttl)
        #: Only send to loopback addresses (true when every root hint is one: a lab).
        self.loopback_only = all(is_loopback(ip) for ip, _ in root_hints)

    # -- delegations ---------------------------------------------------------------
    def closest_delegation(self, name: str, *, parent_side: bool = False) -> Delegation:
        """The deepest cached zone cut at or above ``name`` (strictly above with ``parent_side``)."""
        get = self.cache.get
        candidate = name
        if parent_side and candidate != ".":
            candidate = _parent(candidate)
        while candidate != ".":
            deleg: Delegation | None = get(("iterative", "zone-ns", candidate))  # only Delegations there
            if deleg is not None:
                return deleg
            candidate = _parent(candidate)
        return self.root

    def store_delegation(self, delegation: Delegation, ttl: float) -> None:
        self.cache.put(("iterative", "zone-ns", delegation.zone), delegation, ttl)

    def cached_delegation(self, zone: str) -> Delegation | None:
        delegation: Delegation | None = self.cache.get(("iterative", "zone-ns", zone))
        return delegation

    # -- name-server addresses --------------------------------------------------------
    def addresses(self, name: str, rdtype: str) -> tuple[str, ...] | None:
        """Cached addresses of a name server (None: unknown; empty: known to have none)."""
        addresses: tuple[str, ...] | None = self.cache.get(("iterative", "addr", name, rdtype))
        return addresses

    def store_addresses(self, name: str, rdtype: str, addresses: tuple[str, ...], ttl: float) -> None:
        self.cache.put(("iterative", "addr", name, rdtype), addresses, ttl)

    # -- lameness -----------------------------------------------------------------------
    def is_lame(self, zone: str, server: ServerAddr) -> bool:
        """Is ``server`` held down for ``zone`` right now?"""
        entry = self.cache.get(("iterative", "lame", zone, server[0], server[1]))
        return isinstance(entry, Lameness) and entry.until > self.servers.clock()

    def mark_lame(self, zone: str, server: ServerAddr) -> float:
        """One more failure of ``server`` for ``zone``: hold it down for a time that doubles
        with each failure in a row (``lame_hold`` .. ``lame_ttl``); returns that time."""
        key = ("iterative", "lame", zone, server[0], server[1])
        entry = self.cache.get(key)
        count = entry.count + 1 if isinstance(entry, Lameness) else 1
        hold = min(self.lame_ttl, self.lame_hold * 2.0 ** min(count - 1, 30))
        # the count is remembered for lame_ttl, so a server failing again comes back later
        self.cache.put(key, Lameness(count, self.servers.clock() + hold), self.lame_ttl)
        return hold

    def clear_lame(self, zone: str, server: ServerAddr) -> None:
        """A good answer from ``server`` for ``zone``: forget its failures there."""
        key = ("iterative", "lame", zone, server[0], server[1])
        if self.cache.get(key) is not None:
            delete = getattr(self.cache, "delete", None)
            if delete is not None:
                delete(key)
            else:
                self.cache.put(key, Lameness(0, 0.0), 0.001)

    def allowed(self, ip: str) -> bool:
        """May packets go to ``ip``? (Never outside loopback when the root is a lab.)"""
        return not self.loopback_only or is_loopback(ip)


def _parent(name: str) -> str:
    """Parent of an absolute lower-case name (``"a.b."`` → ``"b."``; ``"b."`` → ``"."``)."""
    index = _label_end(name)
    rest = name[index + 1:]
    return rest or "."


def _label_end(name: str) -> int:
    """Index of the dot that ends the first label (skipping ``\\.`` escapes)."""
    i = 0
    while True:
        j = name.index(".", i)
        if j == 0 or name[j - 1] != "\\":
            return j
        # count backslashes: an even number means the dot is not escaped
        k = j - 1
        while k >= 0 and name[k] == "\\":
            k -= 1
        if (j - 1 - k) % 2 == 0:
            return j
        i = j + 1
