"""Request coalescing: concurrent identical queries share one upstream lookup.

The first caller starts the lookup as a task with its deadline; later callers for the same
key wait on the same task. Every waiter waits through ``asyncio.shield``, so a waiter that
is cancelled leaves the lookup running for the others (the thundering-herd and
cancellation races aiohttp's resolver had). The lookup enforces its own deadline (the
chain does), so a waiter needs a timer of its own only when its deadline comes earlier;
that keeps the miss path at one task and no extra timer. The in-flight entry is removed by
the task's own done-callback, so it cannot leak, whatever the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from .errors import ResolveTimeout
from .stats import ResolverStats

Fetch = Callable[[Any, float], Coroutine[Any, Any, Any]]


class Coalescer:
    def __init__(self, stats: ResolverStats | None = None) -> None:
        self._inflight: dict[Hashable, tuple[asyncio.Task[Any], float]] = {}
        self._stats = stats or ResolverStats()

    def __len__(self) -> int:
        """Lookups in flight now."""
        return len(self._inflight)

    async def run(self, key: Hashable, fetch: Fetch, timeout: float) -> Any:
        """Await ``fetch(key, deadline)``, shared with every concurrent caller of the same key."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        inflight = self._inflight.get(key)
        if inflight is None:
            task = loop.create_task(fetch(key, deadline))
            self._inflight[key] = (task, deadline)
            task.add_done_callback(lambda t: self._forget(key, t))
            return await asyncio.shield(task)
        task, lookup_deadline = inflight
        self._stats.coalesced += 1
        if deadline >= lookup_deadline:
            return await asyncio.shield(task)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception() from None  # type: ignore[misc]
            name, rdtype = _describe(key)
            raise ResolveTimeout(name=name, rdtype=rdtype) from None

    def _forget(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        inflight = self._inflight.get(key)
        if inflight is not None and inflight[0] is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark it retrieved: every waiter may have gone

    async def aclose(self) -> None:
        tasks = [task for task, _ in self._inflight.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _describe(key: Hashable) -> tuple[str | None, str | None]:
    if isinstance(key, tuple) and len(key) >= 2:
        return str(key[0]), str(key[1])
    return None, None
