"""The express lane of a bulk run: a miss sent straight to a backend that can take it
without a coroutine (``NativeBackend.begin``, ``CaresBackend.begin``), skipping the frames in
between.

A miss through ``Resolver.resolve`` runs five coroutines (the resolver's, the coalescer's
lookup, the fetch, the chain's walk, the backend's) and, behind a ``PoolBackend``, a sixth.
For a bulk run through the native backend those frames cost more CPU than the backend's
own work, and about a fifth of a name's CPU through c-ares (README "Performance"). The lane
does what they do, in one callback:

* only for a miss: a name in the cache (fresh, stale or due for prefetch) or already in
  flight takes the full path (the hit, the refresh, or joining the lookup);
* the lookup is registered with the coalescer, so any caller asking the same name meanwhile
  joins it (each with its own deadline; on a timeout the patient ones restart through the
  full path, as for any lookup);
* the outcome is counted as the chain and the resolver count it (``stats``: the backend's
  latency, answers, negatives and errors; queries, misses, upstream lookups, errors by
  kind), tallied per server by the pool (its health checks), cached (answers re-timed to
  the cache's clamps, negatives for their RFC 2308 TTL), and an error is the one the chain
  would raise.

It is used when the chain is that one backend (or a ``PoolBackend`` of them without
per-server rate limits) and the cache is a plain ``TTLCache`` or none; anything else, and
any lookup the backend declines to ``begin``, takes ``Resolver.resolve``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ..answer import Answer
from ..backends.base import Query
from ..cache import TTLCache
from ..coalesce import _Lookup
from ..errors import NegativeAnswer, ResolveError
from .pool import PoolBackend, counts_against

if TYPE_CHECKING:
    from ..resolver import Resolver
    from ..stats import BackendStats
    from .pool import Upstream

log = logging.getLogger("asyncresolve.bulk")
_perf_counter = time.perf_counter


class ExpressLane:
    """The lane of one resolver on one event loop (see the module docstring)."""

    __slots__ = ("backend", "backend_stats", "cache", "chain", "chain_name", "entries", "inflight", "loop", "pool",
                 "resolver", "stats")

    def __init__(self, resolver: Resolver, loop: asyncio.AbstractEventLoop) -> None:
        self.resolver = resolver
        self.loop = loop
        chain_backend = resolver.chain.backends[0]
        self.pool: PoolBackend | None = chain_backend if isinstance(chain_backend, PoolBackend) else None
        self.backend: Any = None if self.pool is not None else chain_backend
        self.chain_name = chain_backend.name
        self.stats = resolver.stats
        self.backend_stats: BackendStats = resolver.stats.backend(chain_backend.name)
        self.cache: TTLCache | None = resolver.cache
        self.entries: dict[Any, Any] | None = resolver.cache._entries if resolver.cache is not None else None
        self.inflight = resolver._coalescer._inflight
        self.chain = resolver.chain

    @classmethod
    def of(cls, resolver: Resolver, loop: asyncio.AbstractEventLoop) -> ExpressLane | None:
        """The lane of ``resolver``, or None when its chain or cache needs the full path."""
        backends = resolver.chain.backends
        if len(backends) != 1 or resolver._second_level is not None:
            return None
        if resolver.cache is not None and resolver.cache.__class__ is not TTLCache:
            return None
        backend = backends[0]
        if isinstance(backend, PoolBackend):
            if not all(getattr(u.backend, "begin", None) is not None and u.bucket is None for u in backend.upstreams):
                return None
        elif getattr(backend, "begin", None) is None:
            return None
        return cls(resolver, loop)

    def start(self, name: str, rdtype: str, timeout: float, upstream: list[str | None],
              deliver: Any = None) -> Any:
        """Send the lookup of (``name``, ``rdtype``) -- both normalised -- and return where its
        ``Answer`` (or the error the full path would raise) goes: ``deliver`` (future-like:
        ``done``, ``set_result``, ``set_exception``), or a new future; None, with nothing sent,
        when it must take ``Resolver.resolve``. ``upstream[0]`` is set to the pool's server asked."""
        key = (name, rdtype, "IN")
        entries = self.entries
        if (entries is not None and key in entries) or key in self.inflight or self.resolver._closed:
            return None
        capable = self.chain._capable.get(rdtype)  # the chain's own memo of who takes the type
        if capable is None:
            capable = self.chain._capable_of(rdtype)
        if not capable:
            return None
        loop = self.loop
        deadline = loop.time() + timeout
        chosen: Upstream | None = None
        backend: Any  # one with ``begin`` (checked by ``of``)
        if self.pool is not None:
            chosen = self.pool._pick()
            backend = chosen.backend
        else:
            backend = self.backend
        lookup = _Lookup(self.resolver._coalescer, key, deadline)
        job = _Job(self, lookup, chosen, loop.create_future() if deliver is None else deliver)
        # registered first: a backend may deliver at once (a name it cannot send)
        self.inflight[key] = lookup
        try:
            taken = backend.begin(Query(name, rdtype, deadline), job, loop)
        except Exception:  # noqa: BLE001 - a bug: the full path meets it again, and counts and reports it
            job.settled = True  # whatever the backend still delivers for it is dropped
            taken = False
        if not taken:
            if self.inflight.get(key) is lookup:
                del self.inflight[key]
            return None
        stats = self.stats
        stats.queries += 1
        stats.cache_misses += 1
        stats.upstream_lookups += 1
        if chosen is not None:
            upstream[0] = chosen.address
        return job.future

    def finish(self, job: _Job, outcome: Any) -> None:
        """Count, tally, cache and deliver one outcome (what the full path's frames do)."""
        lookup = job.lookup
        key = lookup.key
        self.backend_stats.record_latency(_perf_counter() - job.started)
        if isinstance(outcome, Answer):
            self.backend_stats.answers += 1
            if job.upstream is not None:
                self.pool._tally(job.upstream, False)  # type: ignore[union-attr]  # set with upstream
            answer = self.cache.store_answer(key, outcome) if self.cache is not None else outcome
            for fut in lookup.forget()[0]:
                if not fut.done():
                    fut.set_result(answer)
            if not job.future.done():
                job.future.set_result(answer)
            return
        error: ResolveError = outcome
        if error.source is None:
            error.source = self.chain_name
        if isinstance(error, NegativeAnswer):
            self.backend_stats.negatives += 1
        else:
            self.backend_stats.errors += 1
        if job.upstream is not None:
            self.pool._tally(job.upstream, counts_against(error))  # type: ignore[union-attr]
        if self.chain.policy.falls_through(error):
            error.attempts = [(self.chain_name, error)]  # type: ignore[attr-defined]  # as the chain's walk sets it
        if isinstance(error, NegativeAnswer) and self.cache is not None:
            self.cache.store_negative(key, error)
        self.stats.count_error(error)
        lookup.fail(error, self.resolver._fetch_bound)
        if not job.future.done():
            job.future.set_exception(error)


class _Job:
    """One lookup in the lane: where the backend delivers its outcome (future-like)."""

    __slots__ = ("future", "lane", "lookup", "settled", "started", "upstream")

    def __init__(self, lane: ExpressLane, lookup: _Lookup, upstream: Upstream | None, future: Any) -> None:
        self.lane = lane
        self.lookup = lookup
        self.upstream = upstream
        self.future = future
        self.settled = False
        self.started = _perf_counter()

    def done(self) -> bool:
        return self.settled

    def set_result(self, outcome: Any) -> None:
        if self.settled:
            return
        self.settled = True
        try:
            self.lane.finish(self, outcome)
        except Exception as exc:  # a bug: counted as a backend crash, never raised into the backend's callback
            lane = self.lane
            lane.backend_stats.errors += 1
            lane.backend_stats.crashes += 1
            name, rdtype = self.lookup.key[0], self.lookup.key[1]  # type: ignore[index]
            log.exception("express lane failed on %s %s", name, rdtype, extra={"backend_crash": lane.chain_name})
            error = ResolveError(f"backend {lane.chain_name} failed: {exc!r}", name=name, rdtype=rdtype,
                                 source=lane.chain_name)
            for fut in self.lookup.forget()[0]:
                if not fut.done():
                    fut.set_exception(error)
            if not self.future.done():
                self.future.set_exception(error)

    def set_exception(self, error: BaseException) -> None:
        self.set_result(error)  # ResolverClosed from the backend's aclose
