"""The ``Resolver`` facade: cache → coalescer → chain of backends."""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .answer import Answer
from .backends.base import Backend, Query, _key_names, key_name
from .cache import CacheKey, Negative, TTLCache
from .chain import Chain, FallthroughPolicy
from .coalesce import Coalescer
from .errors import (
    InvalidQuery,
    NegativeAnswer,
    NoAnswer,
    NXDomain,
    ResolveError,
    ResolverClosed,
    ResolveTimeout,
)
from .getaddrinfo import getaddrinfo as _getaddrinfo
from .names import _PLAIN_NAME, MAX_NAME_LENGTH, MAX_TIMEOUT, _type_memo, normalize_rdtype, validate_timeout
from .stats import ResolverStats

if typing.TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .bulk.result import BulkResult

_DEFAULT = object()

#: (name, type) exactly as a caller passed them (``str`` only) -> the cache key. Keys of
#: other classes never enter, so ``1`` or ``True`` cannot pass for ``"1"``.
_query_keys: dict[tuple[object, object], tuple[str, str, str]] = {}
_plain_name = _PLAIN_NAME.fullmatch


def _query_key(name: object, rdtype: object) -> tuple[str, str, str]:
    """The cache key of a query: the name as ``key_name`` gives it (relative names keep no
    dot), the type's mnemonic, class IN. Raises ``InvalidName``/``InvalidQuery``."""
    if isinstance(name, str) and _plain_name(name) is not None and (
            len(name) <= MAX_NAME_LENGTH or (len(name) == MAX_NAME_LENGTH + 1 and name[-1] == ".")):
        # already canonical (lower-case plain labels): the key name is the name as typed
        kname = name
    else:
        try:
            kname = _key_names[name]
        except (KeyError, TypeError):
            kname = key_name(name)
    try:
        key = (kname, _type_memo[rdtype], "IN")
    except (KeyError, TypeError):
        key = (kname, normalize_rdtype(rdtype), "IN")
    return key


def _remember_query_key(name: object, rdtype: object, key: tuple[str, str, str]) -> None:
    """Memoise a query's key for the hits to come. Only a query found in the cache, or
    joining a lookup in flight, is remembered: a bulk run's names, each asked once, would
    fill the memo with garbage (and give the garbage collector seven more objects to walk
    per name)."""
    if name.__class__ is str and rdtype.__class__ is str:
        if len(_query_keys) >= 65_536:
            _query_keys.clear()
        _query_keys[name, rdtype] = key


_ADDRESS_FAMILIES = (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)


class Resolver:
    """An asyncio DNS resolver: ``await resolver.resolve("example.com", "MX")``.

    :param backends: the chain, in order; default ``default_backends()`` (hosts file, the
        OS's ``getaddrinfo``, and c-ares for the types the OS cannot answer).
    :param cache: a ``TTLCache`` shared by the resolver and its backends; ``None`` for
        no cache at all. Default: ``TTLCache()``.
    :param timeout: default overall deadline of one ``resolve`` in seconds.
    :param fallthrough: which backend outcomes pass the query to the next backend.
    """

    def __init__(
        self,
        backends: Sequence[Backend] | None = None,
        *,
        cache: TTLCache | Any | None = _DEFAULT,
        timeout: float = 5.0,
        fallthrough: FallthroughPolicy | None = None,
    ) -> None:
        timeout = validate_timeout(timeout)
        if backends is None:
            from .backends import default_backends

            backends = default_backends()
        if not backends:
            raise ValueError("a resolver needs at least one backend")
        self.cache = TTLCache() if cache is _DEFAULT else cache
        self.timeout = timeout
        self.stats = ResolverStats(cache=self.cache)
        self.chain = Chain(backends, fallthrough, self.stats)
        for backend in self.chain.backends:
            backend.attach(self.cache)
        self._coalescer = Coalescer(self.stats)
        self._on_refresh = self._schedule_refresh  # bound once: the hit path passes it on every call
        self._fetch_bound = self._fetch  # and the miss path: one object less per lookup in flight
        # A cache with a second level (``RedisCache``) is asked on first-level misses.
        self._second_level: Any = getattr(self.cache, "second_level", None)
        self._refreshes: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def cache(self) -> Any:
        """The answer cache (a ``TTLCache``, another cache, or None)."""
        return self._cache

    @cache.setter
    def cache(self, cache: Any) -> None:
        self._cache = cache
        # The hit path's bindings, made once: a plain TTLCache's table lookup and clock.
        if cache.__class__ is TTLCache:
            self._cache_entries: Any = cache._entries
            self._cache_clock: Any = cache.clock
        else:
            self._cache_entries = self._cache_clock = None

    @property
    def backends(self) -> tuple[Backend, ...]:
        """The chain's backends, in the order they are asked."""
        return self.chain.backends

    # -- lookups ------------------------------------------------------------------
    async def resolve(self, name: str, rdtype: str | int = "A", timeout: float | None = None) -> Answer:
        """Resolve one (name, type); returns an ``Answer`` or raises a ``ResolveError``.

        ``timeout`` overrides the resolver's deadline for this call; it is checked on every
        call, cache hits included (``InvalidQuery`` unless a number in (0, 86400]).
        """
        if timeout is not None and (timeout.__class__ is not float or not 0.0 < timeout <= MAX_TIMEOUT):
            timeout = validate_timeout(timeout)  # the common float in range skips the call
        entries = self._cache_entries
        try:
            key = _query_keys[name, rdtype]  # a subscript: cheaper than .get on a hit
        except (KeyError, TypeError):
            # A name not seen in the cache yet: one .get (no second KeyError raised on a miss)
            key = _query_key(name, rdtype)
            if entries is not None:
                entry = entries.get(key)
                if entry is not None or key in self._coalescer._inflight:  # asked again
                    _remember_query_key(name, rdtype, key)
            elif (self._cache is not None and key in self._cache) or key in self._coalescer._inflight:
                _remember_query_key(name, rdtype, key)
        else:
            if entries is not None:
                try:
                    entry = entries[key]
                except KeyError:
                    entry = None
        stats = self.stats
        stats.queries += 1
        if entries is not None:
            # TTLCache.lookup inlined for its two common cases, a fresh entry and none at all;
            # an entry due for a refresh, and other cache classes, go through lookup itself.
            if entry is None:
                stats.cache_misses += 1
            elif self._cache_clock() < entry.fresh_until:
                entry.used = True
                value = entry.value
                stats.cache_hits += 1
                if value.__class__ is Negative:
                    error = value.error()
                    stats.count_error(error)
                    raise error
                return value  # type: ignore[no-any-return]  # the cache holds Answers and Negatives
            else:
                value = self._cache.lookup(key, self._on_refresh, stats)
                if value is not None:
                    return self._cached(value)
                stats.cache_misses += 1
        elif self._cache is not None:
            value = self._cache.lookup(key, self._on_refresh, stats)
            if value is not None:
                return self._cached(value)
            stats.cache_misses += 1
        if self._closed:
            raise ResolverClosed("resolver is closed", name=key[0], rdtype=key[1])
        try:
            # the ignore: the coalescer hands back Any; what _fetch returns is an Answer
            return await self._coalescer.run(key, self._fetch_bound, timeout or self.timeout)  # type: ignore[no-any-return]
        except ResolveError as error:
            stats.count_error(error)
            raise

    def _cached(self, value: Any) -> Answer:
        """A hit on the cache's slower path: the answer, or the cached negative raised."""
        stats = self.stats
        stats.cache_hits += 1
        if value.__class__ is Negative:
            error = value.error()
            stats.count_error(error)
            raise error
        return value  # type: ignore[no-any-return]  # the cache holds Answers and Negatives

    async def _fetch(self, key: CacheKey, deadline: float) -> Answer:
        """One upstream lookup through the chain, whose result goes to the cache."""
        self.stats.upstream_lookups += 1
        try:
            if self._second_level is None:
                # the ignores: a CacheKey may be any hashable; a query's is the (name, type, class) _query_key made
                answer = await self.chain.resolve(Query(key[0], key[1], deadline))  # type: ignore[index]
            else:
                answer = await self._second_level.fetch(key, deadline, self._ask_chain(key, deadline))
        except NegativeAnswer as error:
            if self.cache is not None:
                self.cache.store_negative(key, error)
            raise
        if self.cache is not None:
            answer = self.cache.store_answer(key, answer)
        return answer

    def _ask_chain(self, key: CacheKey, deadline: float) -> Callable[[], Awaitable[Answer]]:
        """The chain's lookup of ``key``, for the second-level cache to call on its miss.

        A method of its own: a closure inside ``_fetch`` would give every miss four cell
        objects for the garbage collector to scan while the lookup is in flight."""
        # the ignores: as in _fetch
        query = Query(key[0], key[1], deadline)  # type: ignore[index]
        return lambda: self.chain.resolve(query)

    def _schedule_refresh(self, key: CacheKey) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(key))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh(self, key: CacheKey) -> None:
        try:
            await self._coalescer.run(key, self._fetch, self.timeout)
        except NegativeAnswer:
            pass  # cached as negative by _fetch: the name is gone now
        except (ResolveError, asyncio.CancelledError):
            if self.cache is not None:
                self.cache.refresh_failed(key)

    async def resolve_addresses(
        self, name: str, family: int = socket.AF_UNSPEC, timeout: float | None = None
    ) -> list[str]:
        """IPv6 and IPv4 addresses of ``name`` (AAAA and A looked up together), as strings.

        Raises ``NXDomain`` if the name does not exist, ``NoAnswer`` if it has neither type.
        """
        if family not in _ADDRESS_FAMILIES or isinstance(family, bool):
            raise InvalidQuery(f"family must be AF_UNSPEC, AF_INET or AF_INET6, not {family!r:.40}")
        answers = await self._address_answers(name, family, timeout)
        return [address for answer in answers for address in answer.addresses]

    async def _address_answers(self, name: str, family: int, timeout: float | None) -> list[Answer]:
        types: tuple[str, ...] = {int(socket.AF_INET): ("A",), int(socket.AF_INET6): ("AAAA",)}.get(
            int(family), ("AAAA", "A"))
        if len(types) == 1:
            return [await self.resolve(name, types[0], timeout)]
        results = await asyncio.gather(*(self.resolve(name, t, timeout) for t in types), return_exceptions=True)
        answers = [r for r in results if isinstance(r, Answer)]
        if answers:
            return answers
        errors = [r for r in results if isinstance(r, BaseException)]
        for cls in (NXDomain, NoAnswer):  # the most telling error first
            for error in errors:
                if isinstance(error, cls):
                    raise error
        for error in errors:
            if isinstance(error, ResolveError) and not isinstance(error, ResolveTimeout):
                raise error
        raise errors[0]

    async def getaddrinfo(
        self,
        host: str | bytes | None,
        port: str | int | None = None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        """Same arguments and result as ``loop.getaddrinfo``; raises ``socket.gaierror``.

        The name is looked up through this resolver; everything else (numeric hosts, ports
        and services, socket types and protocols, flags) is the C library's, without I/O.
        See ``asyncresolve.getaddrinfo``.
        """
        return await _getaddrinfo(self, host, port, family, type, proto, flags)

    def resolve_many(
        self,
        names: Any,
        rdtypes: Sequence[str] | str = ("A",),
        *,
        concurrency: int = 500,
        rate: float | None = None,
        retries: int = 2,
        timeout: float | None = None,
        **options: Any,
    ) -> AsyncIterator[BulkResult]:
        """Resolve a stream of names: ``async for result in resolver.resolve_many(names): ...``.

        Yields one ``asyncresolve.bulk.BulkResult`` per (name, type) as it completes; see
        ``asyncresolve.bulk.BulkRun`` for the options and README "Bulk resolution".
        """
        from .bulk.runner import BulkRun

        return BulkRun(self, names, rdtypes, concurrency=concurrency, rate=rate, retries=retries,
                       timeout=timeout, **options).results()

    # -- lifecycle ----------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the resolver and its backends; later calls raise ``ResolverClosed``."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._refreshes):
            task.cancel()
        await self._coalescer.aclose()
        for backend in self.chain.backends:
            await backend.aclose()
        close_cache = getattr(self.cache, "aclose", None)
        if close_cache is not None:
            await close_cache()

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        names = ",".join(b.name for b in self.chain.backends)
        return f"<Resolver backends={names} timeout={self.timeout}>"


__all__ = ["Resolver"]
