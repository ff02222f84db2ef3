"""The shared TTL cache: positive and negative answers, infrastructure for backends.

Every entry has an expiry on an injectable monotonic clock. Positive answers keep their
real TTL (clamped to ``[min_ttl, max_ttl]``); negative ones (NXDOMAIN, NODATA) the RFC 2308
TTL the backend reported, or ``negative_ttl`` when it knew none, clamped to
``negative_max_ttl``. The size is bounded; the least recently used entry goes first.

``lookup`` is the resolver's hot path: a dict lookup, a clock read, one comparison and a
flag set, no lock, no I/O. When an entry is due for a refresh (prefetch or serve-stale) it
calls the ``on_refresh`` hook once and keeps serving the entry meanwhile; the stale answers
served and the prefetches started are counted on the cache and on the caller's ``stats``.

Eviction is LRU by the second-chance (CLOCK) rule: a hit only marks its entry as used, and
an entry that comes up for eviction while marked is given another round at the young end.
That keeps the hit path free of any reordering of the table.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from .answer import Answer, Clock
from .errors import NegativeAnswer
from .records import SOARecord

CacheKey = Hashable


class Negative:
    """A cached NXDOMAIN or NODATA: rebuilt into a fresh exception on every hit."""

    __slots__ = ("_clock", "canonical_name", "cname_chain", "error_type", "expires_at", "name", "rdtype", "soa",
                 "source")

    def __init__(self, error: NegativeAnswer, expires_at: float, clock: Clock) -> None:
        self.error_type = type(error)
        self.name = error.name
        self.rdtype = error.rdtype
        self.source = error.source
        self.soa: SOARecord | None = error.soa
        self.cname_chain = error.cname_chain
        self.canonical_name = error.canonical_name
        self.expires_at = expires_at
        self._clock = clock

    def error(self) -> NegativeAnswer:
        ttl = max(0, int(self.expires_at - self._clock() + 0.999))
        return self.error_type(
            name=self.name, rdtype=self.rdtype, source=self.source, ttl=ttl, soa=self.soa, from_cache=True,
            cname_chain=self.cname_chain, canonical_name=self.canonical_name,
        )


class _Entry:
    __slots__ = ("expires_at", "fresh_until", "refresh_at", "refreshing", "stale_until", "used", "value")

    def __init__(self, value: Any, expires_at: float, refresh_at: float, stale_until: float) -> None:
        self.value = value
        self.expires_at = expires_at
        self.refresh_at = refresh_at
        self.stale_until = stale_until
        # Before this instant a hit needs no decision at all: one comparison on the hot path.
        self.fresh_until = min(expires_at, refresh_at)
        self.refreshing = False
        self.used = False


_NEVER = float("inf")


class TTLCache:
    """A TTL-honouring LRU cache shared by the resolver and its backends.

    :param max_entries: LRU bound (all entries, answers and backend infrastructure alike).
    :param min_ttl: / :param max_ttl: clamps applied to positive TTLs.
    :param negative_ttl: TTL of a negative answer whose source knew no SOA.
    :param negative_max_ttl: upper clamp of negative TTLs (RFC 2308 suggests up to 3 hours).
    :param serve_stale: seconds an expired positive answer may still be served while it is
        refreshed in the background (RFC 8767); 0 disables it.
    :param stale_answer_ttl: TTL shown on a stale answer (RFC 8767 recommends 30 s).
    :param prefetch: refresh in the background an entry that is hit when less than
        ``prefetch_fraction`` of its TTL remains (as unbound's ``prefetch``).
    :param prefetch_min_ttl: entries with a shorter original TTL are never prefetched.
    :param clock: monotonic clock in seconds; tests inject their own.
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        *,
        min_ttl: float = 0,
        max_ttl: float = 86_400,
        negative_ttl: float = 60,
        negative_max_ttl: float = 3_600,
        serve_stale: float = 0,
        stale_answer_ttl: int = 30,
        prefetch: bool = False,
        prefetch_fraction: float = 0.1,
        prefetch_min_ttl: float = 10,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if not 0 <= min_ttl <= max_ttl:
            raise ValueError("need 0 <= min_ttl <= max_ttl")
        if negative_ttl < 0 or negative_max_ttl < 0 or serve_stale < 0:
            raise ValueError("TTLs must not be negative")
        if not 0 < prefetch_fraction < 1:
            raise ValueError("prefetch_fraction must be between 0 and 1")
        self.max_entries = max_entries
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.negative_max_ttl = negative_max_ttl
        self.serve_stale = serve_stale
        self.stale_answer_ttl = stale_answer_ttl
        self.prefetch = prefetch
        self.prefetch_fraction = prefetch_fraction
        self.prefetch_min_ttl = prefetch_min_ttl
        self.clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self.evictions = 0
        self.stale_served = 0
        self.prefetches = 0

    # -- the resolver's hot path ------------------------------------------------
    def lookup(self, key: CacheKey, on_refresh: Callable[[CacheKey], None] | None = None,
               stats: Any = None) -> Any:
        """The cached value (``Answer`` or ``Negative``) for ``key``, or None.

        Fresh entries are returned as they are. An entry due for prefetch, or an expired
        positive answer within the serve-stale window, triggers ``on_refresh(key)`` once.
        ``stats`` (a ``ResolverStats``, optional) counts ``stale_served`` and ``prefetches``
        for the caller, as the cache's own attributes of the same names do for all callers.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if now < entry.fresh_until:
            entry.used = True
            return entry.value
        return self._lookup_due(key, entry, now, on_refresh, stats)

    def _lookup_due(self, key: CacheKey, entry: _Entry, now: float,
                    on_refresh: Callable[[CacheKey], None] | None, stats: Any) -> Any:
        """``lookup`` of an entry due for prefetch, expired, or stale."""
        if now < entry.expires_at:
            entry.used = True
            if on_refresh is not None and not entry.refreshing:
                entry.refreshing = True
                self.prefetches += 1
                if stats is not None:
                    stats.prefetches += 1
                on_refresh(key)
            return entry.value
        if now < entry.stale_until and on_refresh is not None:
            entry.used = True
            if not entry.refreshing:
                entry.refreshing = True
                on_refresh(key)
            self.stale_served += 1
            if stats is not None:
                stats.stale_served += 1
            value: Answer = entry.value
            return value.replace(ttl=self.stale_answer_ttl, received_at=now, from_cache=True)
        if now >= entry.stale_until:
            del self._entries[key]
        return None

    # -- storing ----------------------------------------------------------------
    def store_answer(self, key: CacheKey, answer: Answer) -> Answer:
        """Cache a positive answer; returns it re-timed to the clamped TTL (what callers see)."""
        original = answer.original_ttl
        ttl = original if self.min_ttl <= original <= self.max_ttl else min(max(original, self.min_ttl), self.max_ttl)
        if ttl != original or answer._clock is not self.clock:
            answer = answer.replace(ttl=ttl, clock=self.clock, received_at=self.clock())
        if ttl <= 0:
            self._entries.pop(key, None)
            return answer
        expires_at = answer._expires_at
        refresh_at = _NEVER
        if self.prefetch and ttl >= self.prefetch_min_ttl:
            refresh_at = expires_at - ttl * self.prefetch_fraction
        self._set(key, _Entry(answer.cached_copy(), expires_at, refresh_at, expires_at + self.serve_stale))
        return answer

    def store_negative(self, key: CacheKey, error: NegativeAnswer) -> None:
        """Cache an NXDOMAIN or NODATA for its RFC 2308 TTL; sets ``error.ttl`` to what was used."""
        ttl = self.negative_ttl if error.ttl is None else error.ttl
        ttl = max(0, min(ttl, self.negative_max_ttl))
        error.ttl = int(ttl)
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        expires_at = self.clock() + ttl
        self._set(key, _Entry(Negative(error, expires_at, self.clock), expires_at, _NEVER, expires_at))

    def refresh_failed(self, key: CacheKey) -> None:
        """A background refresh failed: allow another attempt on a later hit."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.refreshing = False

    # -- the generic API, for backends' infrastructure ------------------------------
    def get(self, key: CacheKey) -> Any:
        """The unexpired value under ``key``, or None. No refresh logic."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() < entry.expires_at:
            entry.used = True
            return entry.value
        if self.clock() >= entry.stale_until:
            del self._entries[key]
        return None

    def remaining_ttl(self, key: CacheKey) -> float | None:
        """Seconds before ``key`` expires, or None if absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        left = entry.expires_at - self.clock()
        return left if left > 0 else None

    def put(self, key: CacheKey, value: Any, ttl: float) -> None:
        """Store any value for ``ttl`` seconds (clamped like positive answers)."""
        ttl = min(max(ttl, self.min_ttl), self.max_ttl)
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        expires_at = self.clock() + ttl
        self._set(key, _Entry(value, expires_at, _NEVER, expires_at))

    def _set(self, key: CacheKey, entry: _Entry) -> None:
        entries = self._entries
        if entries.get(key) is not None:
            entries.move_to_end(key)
        entries[key] = entry
        if len(entries) <= self.max_entries:
            return
        while len(entries) > self.max_entries:
            old_key, old = entries.popitem(last=False)
            if old.used and old is not entry:
                old.used = False  # used since its last round: a second chance at the young end
                entries[old_key] = old
                continue
            self.evictions += 1

    # -- housekeeping -------------------------------------------------------------
    def delete(self, key: CacheKey) -> None:
        """Forget one entry (no error if it is absent)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def purge_expired(self) -> int:
        """Drop entries past their stale window; returns how many went."""
        now = self.clock()
        dead = [k for k, e in self._entries.items() if now >= e.stale_until]
        for key in dead:
            del self._entries[key]
        return len(dead)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None
