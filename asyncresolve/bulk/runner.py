"""The streaming engine behind ``Resolver.resolve_many`` and ``asyncresolve bulk``.

``concurrency`` worker tasks pull (name, type) pairs from the input one at a time and put
each final result on a bounded queue that the caller's ``async for`` drains: nothing
materialises the input or the results, so memory stays flat however long the stream, and
a slow name holds one worker, never the others. A name's deadline (``timeout``) starts
when it is sent -- after its worker is free and the rate limiter let it through -- and
again for each retry.

Rate limiting counts upstream sends only: a pair already in the resolver's cache, or in
flight for another worker (the coalescer will share that lookup), takes no token.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InvalidName, InvalidQuery, ResolveError
from ..names import normalize_name, normalize_rdtype
from .limiter import TokenBucket
from .result import DEFAULT_RETRY_ON, FINAL_STATUSES, INVALID, NOERROR, BulkResult, status_of

if TYPE_CHECKING:
    from ..resolver import Resolver
    from .wildcards import WildcardDetector

DEFAULT_CONCURRENCY = 500
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 0.2

Item = str | tuple[str, str]
Names = Iterable[Any] | AsyncIterable[Any]
_DONE = object()
_STOP = object()


def _pairs(items: Iterable[Any], rdtypes: tuple[str, ...]) -> Iterator[tuple[Any, Any]]:
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            yield item
        else:
            for rdtype in rdtypes:
                yield item, rdtype


async def _apairs(items: AsyncIterable[Any], rdtypes: tuple[str, ...]) -> AsyncIterator[tuple[Any, Any]]:
    async for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            yield item
        else:
            for rdtype in rdtypes:
                yield item, rdtype


class BulkRun:
    """One bulk run over a stream of names: iterate ``results()`` once.

    ``counts`` (per status), ``done``, ``in_flight``, ``sent`` and ``skipped`` are live
    counters for progress displays. See ``Resolver.resolve_many`` for the parameters;
    ``skip`` is a collection of ``(name, type)`` pairs (normalised) not to resolve again
    (what ``--resume`` found), ``retry_on`` the statuses that are retried,
    ``wildcards`` a ``WildcardDetector`` (answers get ``BulkResult.wildcard``).
    """

    def __init__(
        self,
        resolver: Resolver,
        names: Names,
        rdtypes: Iterable[str] | str = ("A",),
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate: float | None = None,
        retries: int = DEFAULT_RETRIES,
        timeout: float | None = None,
        retry_on: Collection[str] = DEFAULT_RETRY_ON,
        backoff: float = DEFAULT_BACKOFF,
        skip: Collection[tuple[str, str]] | None = None,
        wildcards: WildcardDetector | None = None,
    ) -> None:
        if isinstance(rdtypes, str):
            rdtypes = (rdtypes,)
        rdtypes = tuple(rdtypes)
        if not rdtypes:
            raise InvalidQuery("resolve_many needs at least one record type")
        for rdtype in rdtypes:
            normalize_rdtype(rdtype)  # a bad type is the caller's error, raised now
        if not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidQuery(f"concurrency must be a positive integer, not {concurrency!r}")
        if rate is not None and not rate > 0:
            raise InvalidQuery(f"rate must be positive, not {rate!r}")
        if not isinstance(retries, int) or retries < 0:
            raise InvalidQuery(f"retries must be a non-negative integer, not {retries!r}")
        if timeout is not None and not timeout > 0:
            raise InvalidQuery(f"timeout must be positive, not {timeout!r}")
        self.resolver = resolver
        self.names = names
        self.rdtypes = rdtypes
        self.concurrency = concurrency
        self.bucket = TokenBucket(rate) if rate is not None else None
        self.retries = retries
        self.timeout = timeout if timeout is not None else resolver.timeout
        self.retry_on = frozenset(retry_on) - FINAL_STATUSES
        self.backoff = backoff
        self.skip = skip
        self.wildcards = wildcards
        self.counts: Counter[str] = Counter()
        self.done = 0
        self.in_flight = 0
        self.sent = 0
        self.skipped = 0
        self.wildcard_hits = 0
        self._started = False
        self._stopping = False
        self._out: asyncio.Queue[Any] | None = None

    def stop(self) -> None:
        """Finish early: what is already complete is still yielded, nothing new is sent.

        Pairs in flight are dropped (they were not reported, so a resumed run redoes them).
        """
        self._stopping = True
        out = self._out
        if out is not None and not out.full():
            out.put_nowait(_STOP)  # wake the consumer if it waits on an empty queue

    # -- the stream ---------------------------------------------------------------
    async def results(self) -> AsyncIterator[BulkResult]:
        """Yield one ``BulkResult`` per (name, type) as it completes (input order is not kept)."""
        if self._started:
            raise RuntimeError("a BulkRun is iterated once")
        self._started = True
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * self.concurrency)
        self._out = out
        tasks: list[asyncio.Task[None]] = []
        if isinstance(self.names, AsyncIterable):
            inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.concurrency)
            tasks.append(loop.create_task(self._feed(_apairs(self.names, self.rdtypes), inbox, out)))
            take = self._queue_taker(inbox)
        else:
            take = self._iterator_taker(_pairs(self.names, self.rdtypes))
        workers = [loop.create_task(self._worker(take, out)) for _ in range(self.concurrency)]
        tasks.extend(workers)
        finished = 0
        try:
            while finished < len(workers):
                if self._stopping:
                    while not out.empty():
                        result = out.get_nowait()
                        if isinstance(result, BulkResult):
                            yield result
                    break
                result = await out.get()
                if result is _STOP:
                    continue
                if result is _DONE:
                    finished += 1
                    continue
                if isinstance(result, BaseException):
                    raise result
                yield result
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    def _iterator_taker(pairs: Iterator[tuple[Any, Any]]) -> Callable[[], Any]:
        async def take() -> Any:
            return next(pairs, _DONE)
        return take

    @staticmethod
    def _queue_taker(inbox: asyncio.Queue[Any]) -> Callable[[], Any]:
        async def take() -> Any:
            item = await inbox.get()
            if item is _DONE:
                inbox.put_nowait(_DONE)  # every worker sees the end
            return item
        return take

    @staticmethod
    async def _feed(pairs: AsyncIterator[tuple[Any, Any]], inbox: asyncio.Queue[Any],
                    out: asyncio.Queue[Any]) -> None:
        try:
            async for pair in pairs:
                await inbox.put(pair)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the input failed: the caller's loop raises it
            await out.put(exc)
            return
        await inbox.put(_DONE)  # re-queued by each taker, so every worker sees it

    async def _worker(self, take: Callable[[], Any], out: asyncio.Queue[Any]) -> None:
        try:
            while True:
                pair = await take()
                if pair is _DONE:
                    break
                result = await self._one(pair[0], pair[1])
                if result is not None:
                    await out.put(result)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # an input iterator that raised: end the run with it
            await out.put(exc)
        await out.put(_DONE)

    # -- one pair -----------------------------------------------------------------
    async def _one(self, raw: Any, raw_type: Any) -> BulkResult | None:
        try:
            name = normalize_name(raw)
            rdtype = normalize_rdtype(raw_type)
        except (InvalidName, InvalidQuery) as error:
            result = BulkResult(_as_text(raw), str(raw_type).upper(), INVALID, error=error)
            if self.skip is not None and result.key in self.skip:
                self.skipped += 1
                return None
            self._count(result)
            return result
        if self.skip is not None and (name, rdtype) in self.skip:
            self.skipped += 1
            return None
        resolver = self.resolver
        loop = asyncio.get_running_loop()
        started = 0.0
        tries = 0
        self.in_flight += 1
        try:
            while True:
                if self.bucket is not None and self._would_send(name, rdtype):
                    await self.bucket.acquire()
                if not tries:
                    started = loop.time()
                tries += 1
                self.sent += 1
                try:
                    answer = await resolver.resolve(name, rdtype, self.timeout)
                except ResolveError as error:
                    status = status_of(error)
                    if status in self.retry_on and tries <= self.retries:
                        await asyncio.sleep(self.backoff * (2 ** (tries - 1)) * random.uniform(0.5, 1.0))
                        continue
                    source, server = _split_source(error.source)
                    result = BulkResult(name, rdtype, status, error=error, source=source, resolver=server,
                                        tries=tries, elapsed=loop.time() - started)
                    break
                source, server = _split_source(answer.source)
                result = BulkResult(name, rdtype, NOERROR, answer, None, source, server, tries,
                                    loop.time() - started)
                if self.wildcards is not None:
                    result.wildcard = await self.wildcards.matches(answer, self.bucket)
                    if result.wildcard:
                        self.wildcard_hits += 1
                break
        finally:
            self.in_flight -= 1
        self._count(result)
        return result

    def _count(self, result: BulkResult) -> None:
        self.done += 1
        self.counts[result.status] += 1

    def _would_send(self, name: str, rdtype: str) -> bool:
        """False when the resolver will answer without a packet (cached, or already in flight)."""
        key = (name, rdtype, "IN")
        cache = self.resolver.cache
        if cache is not None and key in cache:
            return False
        coalescer = getattr(self.resolver, "_coalescer", None)
        return coalescer is None or key not in coalescer._inflight


def _as_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "backslashreplace").strip()
    return str(raw).strip()


def _split_source(source: str | None) -> tuple[str | None, str | None]:
    """``"cares@127.0.0.1:53"`` (a pool's answer) -> ("cares", "127.0.0.1:53")."""
    if source is None or "@" not in source:
        return source, None
    backend, _, server = source.partition("@")
    return backend, server


async def resolve_many(resolver: Resolver, names: Names, rdtypes: Iterable[str] | str = ("A",),
                       **options: Any) -> AsyncIterator[BulkResult]:
    """``BulkRun(resolver, names, rdtypes, **options).results()``, as an async iterator."""
    async for result in BulkRun(resolver, names, rdtypes, **options).results():
        yield result
