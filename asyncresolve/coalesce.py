"""Request coalescing: concurrent identical queries share one upstream lookup.

The first caller starts the lookup as a task with its deadline; later callers for the same
key wait on the same task. Every waiter waits through ``asyncio.shield``, so a waiter that
is cancelled leaves the lookup running for the others (the thundering-herd and
cancellation races aiohttp's resolver had).

Each waiter keeps its own deadline:

* a waiter whose deadline comes before the lookup's waits with a timer of its own and
  gets ``ResolveTimeout`` at its deadline, leaving the lookup to the others;
* a waiter whose deadline comes after the lookup's waits on it without a timer; if the
  lookup ends because *its* deadline ran out, the waiter starts (or joins) a new lookup
  with the time it has left, so a caller with ``timeout=5`` is never cut short by one
  that joined with ``timeout=0.1``.

The first caller needs no timer at all (the lookup enforces its deadline; the chain
does), which keeps the miss path at one task and no extra timer. The in-flight entry is
removed by the task's own done-callback, so it cannot leak, whatever the outcome.

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


class Coalescer:
    def __init__(self, stats: ResolverStats | None = None) -> None:
        self._inflight: dict[Hashable, tuple[asyncio.Task[Any], float]] = {}
        self._stats = stats or ResolverStats()
        self._closed = False

    def __len__(self) -> int:
        """Lookups in flight now."""
        return len(self._inflight)

    async def run(self, key: Hashable, fetch: Fetch, timeout: float) -> Any:
        """Await ``fetch(key, deadline)``, shared with every concurrent caller of the same key."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        inflight = self._inflight.get(key)
        if inflight is None:
            return await self._wait(self._start(key, fetch, deadline, loop), key)
        self._stats.coalesced += 1
        while True:
            task, lookup_deadline = inflight
            if deadline < lookup_deadline:
                return await self._wait_until(task, key, deadline, loop)
            try:
                return await self._wait(task, key)
            except ResolveTimeout:
                now = loop.time()
                if deadline - now <= 0 or now < lookup_deadline - _CLOCK_SLACK:
                    raise  # our own time is up, or the lookup failed early on its own
            # The shared lookup ran out of its (shorter) deadline: go on within ours.
            inflight = self._inflight.get(key)
            if inflight is None or inflight[0] is task:
                return await self._wait(self._start(key, fetch, deadline, loop), key)

    def _start(self, key: Hashable, fetch: Fetch, deadline: float, loop: asyncio.AbstractEventLoop
               ) -> asyncio.Task[Any]:
        if self._closed:
            raise _closed(key)
        task = loop.create_task(fetch(key, deadline))
        self._inflight[key] = (task, deadline)
        task.add_done_callback(lambda t: self._forget(key, t))
        return task

    async def _wait(self, task: asyncio.Task[Any], key: Hashable) -> Any:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._closed_under(task):
                raise _closed(key) from None
            raise

    async def _wait_until(self, task: asyncio.Task[Any], key: Hashable, deadline: float,
                          loop: asyncio.AbstractEventLoop) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(task), deadline - loop.time())
        except asyncio.CancelledError:
            if self._closed_under(task):
                raise _closed(key) from None
            raise
        except asyncio.TimeoutError:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception() from None  # type: ignore[misc]
            name, rdtype = _describe(key)
            raise ResolveTimeout(name=name, rdtype=rdtype) from None

    def _closed_under(self, task: asyncio.Task[Any]) -> bool:
        """True when ``aclose`` cancelled the lookup and the waiter itself is not being
        cancelled (a waiter that is cancelled sees ``CancelledError``, whatever else happens)."""
        if not (self._closed and task.cancelled()):
            return False
        cancelling = getattr(asyncio.current_task(), "cancelling", None)
        return not (cancelling is not None and cancelling())

    def _forget(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        inflight = self._inflight.get(key)
        if inflight is not None and inflight[0] is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark it retrieved: every waiter may have gone

    async def aclose(self) -> None:
        self._closed = True
        tasks = [task for task, _ in self._inflight.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _closed(key: Hashable) -> ResolverClosed:
    name, rdtype = _describe(key)
    return ResolverClosed("resolver closed while the lookup was in flight", name=name, rdtype=rdtype)


def _describe(key: Hashable) -> tuple[str | None, str | None]:
    if isinstance(key, tuple) and len(key) >= 2:
        return str(key[0]), str(key[1])
    return None, None
