"""Request coalescing: concurrent identical queries share one upstream lookup.

The first caller starts the lookup as a task with its deadline; later callers for the same
key join it. Every caller, the first included, waits on a plain future of its own, and the
lookup task settles all of them as its last step: a caller that is cancelled cancels only
its own future and leaves the lookup running for the others (the thundering-herd and
cancellation races aiohttp's resolver had). This costs one future per caller and nothing
per lookup beyond its task, where ``asyncio.shield`` per caller cost an extra future, two
callbacks and one more loop hop each, and a done-callback would cost one more loop hop per
lookup (measured in ``benchmarks``, scenario 3).

Each waiter keeps its own deadline:

* a waiter whose deadline comes before the lookup's arms a timer on its own future and
  gets ``ResolveTimeout`` at its deadline, leaving the lookup to the others;
* a waiter whose deadline comes after the lookup's waits without a timer; if the lookup
  ends because *its* deadline ran out, the waiter starts (or joins) a new lookup with the
  time it has left, so a caller with ``timeout=5`` is never cut short by one that joined
  with ``timeout=0.1``.

The first caller needs no timer at all (the lookup enforces its deadline; the chain
does), which keeps the miss path at one task, one future and no extra timer. The in-flight
entry is removed by the lookup task itself whatever the outcome, and by ``aclose`` for a task
cancelled before it ever ran, so it cannot leak.

Closing: ``aclose`` cancels the lookups in flight; their waiters get ``ResolverClosed``,
not ``CancelledError``. Only a waiter that is itself cancelled sees ``CancelledError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from .errors import ResolverClosed, ResolveTimeout
from .stats import ResolverStats

Fetch = Callable[[Any, float], Coroutine[Any, Any, Any]]

#: Timers may fire this much before their deadline; a lookup that ended in a timeout this
#: close to its deadline ran out of time (rather than failing early on its own).
_CLOCK_SLACK = 0.002

_get_running_loop = asyncio.get_running_loop


class _Lookup:
    """One lookup in flight: its task, its deadline and the futures of its waiters."""

    __slots__ = ("coalescer", "deadline", "key", "task", "waiters")

    def __init__(self, coalescer: Coalescer, key: Hashable, deadline: float) -> None:
        self.coalescer = coalescer
        self.key = key
        self.deadline = deadline
        self.waiters: list[asyncio.Future[Any]] = []
        self.task: asyncio.Task[Any] | None = None

    async def drive(self, fetch: Fetch) -> None:
        """The lookup task: run ``fetch``, then forget the entry and settle every waiter.

        An error goes to the waiters, not to the task (nobody awaits the task itself)."""
        try:
            result = await fetch(self.key, self.deadline)
        except asyncio.CancelledError:
            self.cancelled()
            raise
        except BaseException as error:
            waiters = self.forget()
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(error)
            if not isinstance(error, Exception):
                raise  # KeyboardInterrupt, SystemExit: the loop's business too
        else:
            for fut in self.forget():
                if not fut.done():
                    fut.set_result(result)

    def forget(self) -> list[asyncio.Future[Any]]:
        inflight = self.coalescer._inflight
        if inflight.get(self.key) is self:
            del inflight[self.key]
        waiters, self.waiters = self.waiters, []
        return waiters

    def cancelled(self) -> None:
        """The lookup was cancelled: ``ResolverClosed`` for its waiters when the coalescer
        is closing, otherwise they are cancelled too."""
        closed = self.coalescer._closed
        for fut in self.forget():
            if closed:
                if not fut.done():
                    fut.set_exception(_closed(self.key))
            else:
                fut.cancel()


class Coalescer:
    def __init__(self, stats: ResolverStats | None = None) -> None:
        self._inflight: dict[Hashable, _Lookup] = {}
        self._stats = stats or ResolverStats()
        self._closed = False

    def __len__(self) -> int:
        """Lookups in flight now."""
        return len(self._inflight)

    async def run(self, key: Hashable, fetch: Fetch, timeout: float) -> Any:
        """Await ``fetch(key, deadline)``, shared with every concurrent caller of the same key."""
        loop = _get_running_loop()
        deadline = loop.time() + timeout
        lookup = self._inflight.get(key)
        if lookup is None:
            fut = loop.create_future()
            self._start(key, fetch, deadline, loop, fut)
            return await fut
        self._stats.coalesced += 1
        while True:
            fut = loop.create_future()
            lookup.waiters.append(fut)
            if deadline < lookup.deadline:
                timer = loop.call_at(deadline, _time_out, fut, key)
                try:
                    return await fut
                finally:
                    timer.cancel()
            try:
                return await fut
            except ResolveTimeout:
                now = loop.time()
                if deadline - now <= 0 or now < lookup.deadline - _CLOCK_SLACK:
                    raise  # our own time is up, or the lookup failed early on its own
            # The shared lookup ran out of its (shorter) deadline: go on within ours.
            current = self._inflight.get(key)
            if current is None or current is lookup:
                fut = loop.create_future()
                self._start(key, fetch, deadline, loop, fut)
                return await fut  # our own lookup now: its deadline is ours
            lookup = current

    def _start(self, key: Hashable, fetch: Fetch, deadline: float, loop: asyncio.AbstractEventLoop,
               first: asyncio.Future[Any]) -> None:
        """Start the lookup of ``key``, ``first`` its first waiter. Entry and waiter exist
        before the task does: a task factory that runs it eagerly finds them in place."""
        if self._closed:
            raise _closed(key)
        lookup = _Lookup(self, key, deadline)
        lookup.waiters.append(first)
        self._inflight[key] = lookup
        try:
            lookup.task = loop.create_task(lookup.drive(fetch))
        except BaseException:
            lookup.forget()  # no task (a closed loop, a failing task factory): no entry either
            raise

    async def aclose(self) -> None:
        self._closed = True
        lookups = list(self._inflight.values())
        for lookup in lookups:
            if lookup.task is not None:
                lookup.task.cancel()
        if lookups:
            await asyncio.gather(*(lookup.task for lookup in lookups if lookup.task is not None),
                                 return_exceptions=True)
        for lookup in lookups:
            lookup.cancelled()  # a task cancelled before its first step never ran ``drive``


def _time_out(fut: asyncio.Future[Any], key: Hashable) -> None:
    if not fut.done():
        name, rdtype = _describe(key)
        fut.set_exception(ResolveTimeout(name=name, rdtype=rdtype))


def _closed(key: Hashable) -> ResolverClosed:
    name, rdtype = _describe(key)
    return ResolverClosed("resolver closed while the lookup was in flight", name=name, rdtype=rdtype)


def _describe(key: Hashable) -> tuple[str | None, str | None]:
    if isinstance(key, tuple) and len(key) >= 2:
        return str(key[0]), str(key[1])
    return None, None
