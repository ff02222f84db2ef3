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
from collections import Counter, deque
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InvalidName, InvalidQuery, ResolveError
from ..names import normalize_name, normalize_rdtype
from .express import ExpressLane
from .limiter import TokenBucket
from .pool import current_upstream
from .result import DEFAULT_RETRY_ON, FINAL_STATUSES, INVALID, NOERROR, BulkResult, status_of

if TYPE_CHECKING:
    from ..answer import Answer
    from ..resolver import Resolver
    from .wildcards import WildcardDetector

DEFAULT_CONCURRENCY = 500
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 0.2

Item = str | tuple[str, str]
Names = Iterable[Any] | AsyncIterable[Any]
_DONE = object()


class _Outbox:
    """Results on their way from the workers to the consumer.

    A deque rather than an ``asyncio.Queue``: the consumer is woken once per batch (all the
    replies one socket read completed), not once per result. Bounded: a worker that finds it
    full waits until the consumer has taken some, so a slow consumer slows the run instead of
    growing memory.
    """

    __slots__ = ("_loop", "_reader", "_room", "items", "limit")

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self.items: deque[Any] = deque()
        self.limit = limit
        self._reader: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None

    def put(self, item: Any) -> None:
        self.items.append(item)
        if self._reader is not None:
            self.wake_reader()

    def full(self) -> bool:
        return len(self.items) >= self.limit

    def wake_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.set_result(None)

    async def wait_items(self) -> None:
        self._reader = self._loop.create_future()
        await self._reader

    async def wait_room(self) -> None:
        while self.full():
            if self._room is None:
                self._room = self._loop.create_future()
            await asyncio.shield(self._room)

    def release(self) -> None:
        if self._room is not None and len(self.items) < self.limit:
            room, self._room = self._room, None
            if not room.done():
                room.set_result(None)


_END = object()  # a driver's input is exhausted (or the run is stopping)
_ROOM = object()  # a driver found the outbox full


class _Driver:
    """One worker's lookups through the express lane, driven by callbacks: the outcome of a
    lookup becomes its result, and the next pair is sent, in the callback that delivers it
    -- no coroutine, future or task wake-up per name. Whatever needs to wait goes back to the
    worker coroutine through ``waiter``: a pair the lane declines (or an invalid name), a
    retry (its back-off), a full outbox, the end of the input. One lookup in flight at most.
    """

    __slots__ = ("arrived", "box", "closed", "lane", "loop", "name", "pairs", "rdtype", "run", "sending", "started",
                 "upstream", "waiter")

    def __init__(self, run: BulkRun, lane: ExpressLane, pairs: Iterator[tuple[Any, Any]], box: _Outbox,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.run = run
        self.lane = lane
        self.pairs = pairs
        self.box = box
        self.loop = loop
        self.waiter: asyncio.Future[Any] | None = None
        self.closed = False
        #: inside ``lane.start``: an outcome delivered at once (a query that could not be sent)
        #: is taken by the loop of ``_next``, not by a nested call (no recursion per name)
        self.sending = self.arrived = False
        self.name = self.rdtype = ""
        self.started = 0.0
        self.upstream: list[str | None] = [None]

    def drive(self) -> asyncio.Future[Any]:
        """Send pairs until one needs the worker; the future says what (a hand-off)."""
        waiter = self.waiter = self.loop.create_future()
        self._next()
        return waiter

    def _hand_off(self, what: Any, error: BaseException | None = None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(what)
            else:
                waiter.set_exception(error)

    def _next(self) -> None:
        run = self.run
        while True:
            if run._stopping:
                self._hand_off(_END)
                return
            if self.box.full():
                self._hand_off(_ROOM)
                return
            try:
                raw, raw_type = next(self.pairs)
            except StopIteration:
                self._hand_off(_END)
                return
            except BaseException as exc:  # noqa: BLE001 - the input failed: the worker re-raises it
                self._hand_off(None, exc)
                return
            try:
                name = normalize_name(raw)
                rdtype = normalize_rdtype(raw_type)
            except (InvalidName, InvalidQuery):
                self._hand_off((raw, raw_type, 0, 0.0, None))  # reported by the worker's full path
                return
            if run.skip is not None and (name, rdtype) in run.skip:
                run.skipped += 1
                continue
            upstream = self.upstream = [None]
            self.name, self.rdtype, self.started = name, rdtype, self.loop.time()
            run.in_flight += 1
            run.sent += 1
            self.sending, self.arrived = True, False
            try:
                taken = self.lane.start(name, rdtype, run.timeout, upstream, self) is not None
            finally:
                self.sending = False
            if not taken:
                run.in_flight -= 1
                run.sent -= 1
                self._hand_off((name, rdtype, 0, 0.0, None))
                return
            if not self.arrived or self.waiter is None:
                return  # in flight (or handed to the worker with its outcome)

    # -- where the lane delivers (future-like) ------------------------------------------
    def done(self) -> bool:
        return self.closed

    def set_result(self, answer: Answer) -> None:
        run = self.run
        run.in_flight -= 1
        result = BulkResult(self.name, self.rdtype, NOERROR, answer, None, answer.source, self.upstream[0], 1,
                            self.loop.time() - self.started)
        run._count(result)
        self.box.put(result)
        self._then()

    def _then(self) -> None:
        if self.sending:
            self.arrived = True
        else:
            self._next()

    def set_exception(self, error: BaseException) -> None:
        run = self.run
        run.in_flight -= 1
        status = status_of(error)
        if status in run.retry_on and run.retries:
            self.arrived = True
            self._hand_off((self.name, self.rdtype, 1, self.started, error))
            return
        result = BulkResult(self.name, self.rdtype, status, error=error,  # type: ignore[arg-type]  # a ResolveError
                            source=getattr(error, "source", None), resolver=self.upstream[0], tries=1,
                            elapsed=self.loop.time() - self.started)
        run._count(result)
        self.box.put(result)
        self._then()


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
        self._outbox: _Outbox | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lane: ExpressLane | None = None

    def stop(self) -> None:
        """Finish early: what is already complete is still yielded, nothing new is sent.

        Pairs in flight are dropped (they were not reported, so a resumed run redoes them).
        """
        self._stopping = True
        if self._outbox is not None:
            self._outbox.wake_reader()

    # -- the stream ---------------------------------------------------------------
    async def results(self) -> AsyncIterator[BulkResult]:
        """Yield one ``BulkResult`` per (name, type) as it completes (input order is not kept)."""
        if self._started:
            raise RuntimeError("a BulkRun is iterated once")
        self._started = True
        loop = self._loop = asyncio.get_running_loop()
        self._lane = ExpressLane.of(self.resolver, loop)
        box = self._outbox = _Outbox(loop, 2 * self.concurrency)
        tasks: list[asyncio.Task[None]] = []
        if isinstance(self.names, AsyncIterable):
            inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.concurrency)
            tasks.append(loop.create_task(self._feed(_apairs(self.names, self.rdtypes), inbox, box)))
            workers = [loop.create_task(self._queue_worker(inbox, box)) for _ in range(self.concurrency)]
        else:
            pairs = _pairs(self.names, self.rdtypes)
            # the lane's callback-driven workers, unless something of a name has to wait
            driven = self._lane is not None and self.bucket is None and self.wildcards is None
            worker = self._driven_worker if driven else self._iterator_worker
            workers = [loop.create_task(worker(pairs, box)) for _ in range(self.concurrency)]
        tasks.extend(workers)
        finished = 0
        items = box.items
        try:
            while finished < len(workers) and not self._stopping:
                if not items:
                    await box.wait_items()
                    continue
                result = items.popleft()
                box.release()
                if result.__class__ is BulkResult:
                    yield result
                elif result is _DONE:
                    finished += 1
                else:
                    raise result
            if self._stopping:  # what is complete is reported; the rest is dropped
                while items:
                    result = items.popleft()
                    if result.__class__ is BulkResult:
                        yield result
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    async def _feed(pairs: AsyncIterator[tuple[Any, Any]], inbox: asyncio.Queue[Any], box: _Outbox) -> None:
        try:
            async for pair in pairs:
                await inbox.put(pair)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - the input failed: the caller's loop re-raises it
            box.put(exc)
            return
        await inbox.put(_DONE)  # re-queued by each worker, so every worker sees it

    async def _iterator_worker(self, pairs: Iterator[tuple[Any, Any]], box: _Outbox) -> None:
        # Every worker pulls from the same iterator: next() runs to completion between awaits.
        try:
            for raw, raw_type in pairs:
                result = await self._one(raw, raw_type)
                if result is not None:
                    box.put(result)
                    if box.full():
                        await box.wait_room()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - an input iterator that raised: the caller's loop re-raises it
            box.put(exc)
        box.put(_DONE)

    async def _driven_worker(self, pairs: Iterator[tuple[Any, Any]], box: _Outbox) -> None:
        assert self._lane is not None
        assert self._loop is not None
        driver = _Driver(self, self._lane, pairs, box, self._loop)
        try:
            while True:
                what = await driver.drive()
                if what is _END:
                    break
                if what is not _ROOM:  # a pair for the full path (maybe a retry, after its back-off)
                    result = await self._one(*what)
                    if result is not None:
                        box.put(result)
                if box.full():
                    await box.wait_room()
        except asyncio.CancelledError:
            driver.closed = True  # what it has in flight is delivered nowhere
            raise
        except BaseException as exc:  # noqa: BLE001 - an input iterator that raised: the caller's loop re-raises it
            box.put(exc)
        driver.closed = True
        box.put(_DONE)

    async def _queue_worker(self, inbox: asyncio.Queue[Any], box: _Outbox) -> None:
        while True:
            pair = await inbox.get()
            if pair is _DONE:
                inbox.put_nowait(_DONE)
                break
            result = await self._one(pair[0], pair[1])
            if result is not None:
                box.put(result)
                if box.full():
                    await box.wait_room()
        box.put(_DONE)

    # -- one pair -----------------------------------------------------------------
    async def _one(self, raw: Any, raw_type: Any, tries: int = 0, started: float = 0.0,
                   failed: ResolveError | None = None) -> BulkResult | None:
        """The full path of one pair; a driver hands over a retry with the tries made so far,
        when the first was sent and the last one's error (its back-off comes first)."""
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
        lane = self._lane
        # asyncio.get_running_loop() costs a getpid() system call (CPython 3.11): once per run
        loop = self._loop or asyncio.get_running_loop()
        self.in_flight += 1
        try:
            while True:
                if failed is not None:
                    failed = None
                    await asyncio.sleep(self.backoff * (2 ** (tries - 1)) * random.uniform(0.5, 1.0))
                if self.bucket is not None and self._would_send(name, rdtype):
                    await self.bucket.acquire()
                if not tries:
                    started = loop.time()
                tries += 1
                self.sent += 1
                upstream: list[str | None] = [None]
                current_upstream.set(upstream)  # a PoolBackend says which server it asked
                try:
                    # The normalised name, with its final dot: a bulk list holds absolute names,
                    # never relative ones for a search list to complete.
                    sent = lane.start(name, rdtype, self.timeout, upstream) if lane is not None else None
                    answer = await (sent if sent is not None else resolver.resolve(name, rdtype, self.timeout))
                except ResolveError as error:
                    _drop_tracebacks(error)
                    status = status_of(error)
                    if status in self.retry_on and tries <= self.retries:
                        failed = error
                        continue
                    result = BulkResult(name, rdtype, status, error=error, source=error.source,
                                        resolver=upstream[0], tries=tries, elapsed=loop.time() - started)
                    break
                result = BulkResult(name, rdtype, NOERROR, answer, None, answer.source, upstream[0], tries,
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


def _drop_tracebacks(error: BaseException) -> None:
    """Forget where ``error`` (and the errors it came from) was raised.

    A traceback holds the frames the error went through, and those frames hold the error (and
    the result that will carry it): a reference cycle per failed name, which only the garbage
    collector frees. On a stream of mostly NXDOMAIN names that garbage dominated the run --
    a third of its CPU time in the collector, and a larger heap. A bulk result needs the
    error's type and message, not where in the resolver it was raised.
    """
    seen = 0
    link: BaseException | None = error
    while link is not None and seen < 8:
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
        seen += 1


def _as_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "backslashreplace").strip()
    return str(raw).strip()


async def resolve_many(resolver: Resolver, names: Names, rdtypes: Iterable[str] | str = ("A",),
                       **options: Any) -> AsyncIterator[BulkResult]:
    """``BulkRun(resolver, names, rdtypes, **options).results()``, as an async iterator."""
    async for result in BulkRun(resolver, names, rdtypes, **options).results():
        yield result
