"""Request coalescing: concurrent identical queries share one upstream lookup.

The first caller (the owner) runs the lookup in its own task: no task, no future and no loop
hop of its own on the miss path. Later callers for the same key join it: each waits on a
plain future of its own, which the lookup settles as its last step; the caller awaits that
future in its own frame (no coroutine of the coalescer's per joined caller). A joined caller
that is cancelled cancels only its own future.

When the owner itself is cancelled (or its task is), its lookup stops with it; if others
have joined, the lookup is started again for them at once in a task of the coalescer's, with
the same deadline (one more upstream query, only in that case), so one caller's cancellation
never costs another its answer. A lookup that nobody waits for any more stops: it does not
go on to fill the cache.

Each waiter keeps its own deadline:

* a waiter whose deadline comes before the lookup's gets a timer on its own future and
  gets ``ResolveTimeout`` at its deadline, leaving the lookup to the others;
* a waiter whose deadline comes after the lookup's waits without a timer; if the lookup
  ends because *its* deadline ran out, the lookup is started again (or the waiters join the
  one now in flight) for every waiter with time left, up to the latest of their deadlines,
  each still timed out at its own: a caller with ``timeout=5`` is never cut short by one
  that joined with ``timeout=0.1``.

The owner needs no timer at all (the lookup enforces its deadline; the chain does). The
in-flight entry is removed by whoever runs the lookup, whatever the outcome, and by
``aclose`` for a task cancelled before it ever ran, so it cannot leak.

Closing: ``aclose`` stops the lookups in flight (it cancels the coalescer's tasks, and the
owners' tasks with a mark that turns the cancellation into ``ResolverClosed`` for them);
every waiter gets ``ResolverClosed``, not ``CancelledError``. Only a caller that is itself
cancelled sees ``CancelledError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from typing import Any

from .errors import ResolverClosed, ResolveTimeout
from .stats import ResolverStats

Fetch = Callable[[Any, float], Coroutine[Any, Any, Any]]

#: Timers may fire this much before their deadline; a lookup that ended in a timeout this
#: close to its deadline ran out of time (rather than failing early on its own).
_CLOCK_SLACK = 0.002

_get_running_loop = asyncio.get_running_loop
_current_task = asyncio.current_task


class _Lookup:
    """One lookup in flight: who runs it (an owner's task or one of ours), its deadline, and
    the futures of its joined waiters with their deadlines."""

    __slots__ = ("closed", "coalescer", "deadline", "deadlines", "key", "owner", "task", "timers", "waiters")

    def __init__(self, coalescer: Coalescer, key: Hashable, deadline: float) -> None:
        self.coalescer = coalescer
        self.key = key
        self.deadline = deadline
        #: made when the first caller joins: most lookups never have one
        self.waiters: list[asyncio.Future[Any]] | None = None
        #: each waiter's deadline, in the order of ``waiters``
        self.deadlines: list[float] | None = None
        #: the timers of the waiters whose deadline comes before the lookup's
        self.timers: list[asyncio.TimerHandle] | None = None
        #: the caller's task running the lookup in place, until it ends or hands it to ``task``
        self.owner: asyncio.Task[Any] | None = None
        self.task: asyncio.Task[Any] | None = None
        #: set by ``aclose`` when it cancels the owner; settled when the owner has left
        self.closed: asyncio.Future[None] | None = None

    def add(self, fut: asyncio.Future[Any], deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        """A waiter joins: ``fut`` gets the lookup's outcome, or ``ResolveTimeout`` at
        ``deadline`` if that comes first."""
        if self.waiters is None:
            self.waiters = [fut]
            self.deadlines = [deadline]
        else:
            self.waiters.append(fut)
            self.deadlines.append(deadline)  # type: ignore[union-attr]  # made with waiters
        if deadline < self.deadline:
            timer = loop.call_at(deadline, _time_out, fut, self.key)
            if self.timers is None:
                self.timers = [timer]
            else:
                self.timers.append(timer)

    async def own(self, fetch: Fetch) -> Any:
        """The owner's side: run ``fetch`` in the caller's task, settle the joined waiters."""
        try:
            result = await fetch(self.key, self.deadline)
        except asyncio.CancelledError:
            if self.closed is not None:  # aclose cancelled us: ResolverClosed, unless our task was cancelled too
                self.cancelled()
                owner = self.owner
                if owner is not None and owner.uncancel() == 0:
                    raise _closed(self.key) from None
            elif not self.coalescer._closed and self.waiters and any(not fut.done() for fut in self.waiters):
                self.hand_off(fetch)
            else:
                self.cancelled()
            raise
        except BaseException as error:
            self.fail(error, fetch)
            raise
        else:
            for fut in self.forget()[0]:
                if not fut.done():
                    fut.set_result(result)
            return result
        finally:
            closing = self.closed
            if closing is not None and not closing.done():
                closing.set_result(None)

    def hand_off(self, fetch: Fetch) -> None:
        """The owner was cancelled while others wait: run the lookup again for them in a task."""
        self.owner = None
        try:
            self.task = _get_running_loop().create_task(self.drive(fetch))
        except BaseException:
            self.cancelled()
            raise

    async def drive(self, fetch: Fetch) -> None:
        """The lookup task: run ``fetch``, then forget the entry and settle every waiter.

        An error goes to the waiters, not to the task (nobody awaits the task itself)."""
        try:
            result = await fetch(self.key, self.deadline)
        except asyncio.CancelledError:
            self.cancelled()
            raise
        except BaseException as error:
            self.fail(error, fetch)
            if not isinstance(error, Exception):
                raise  # KeyboardInterrupt, SystemExit: the loop's business too
        else:
            for fut in self.forget()[0]:
                if not fut.done():
                    fut.set_result(result)

    def fail(self, error: BaseException, fetch: Fetch) -> None:
        """The lookup failed: ``error`` for its waiters, except that when it ran out of its
        own deadline, the waiters with time left go on with a new lookup."""
        waiters, deadlines = self.forget()
        if not waiters:
            return
        if isinstance(error, ResolveTimeout):
            now = _get_running_loop().time()
            if now >= self.deadline - _CLOCK_SLACK:  # out of time, rather than failed early on its own
                patient = []
                for fut, deadline in zip(waiters, deadlines, strict=True):
                    if fut.done():
                        continue
                    if deadline > now:
                        patient.append((fut, deadline))
                    else:
                        fut.set_exception(error)
                if patient:
                    self.coalescer._restart(self.key, fetch, patient)
                return
        for fut in waiters:
            if not fut.done():
                fut.set_exception(error)

    def forget(self) -> tuple[Sequence[asyncio.Future[Any]], Sequence[float]]:
        """Remove the entry; the waiters and their deadlines, which are the caller's to settle."""
        inflight = self.coalescer._inflight
        if inflight.get(self.key) is self:
            del inflight[self.key]
        if self.timers is not None:
            for timer in self.timers:
                timer.cancel()
            self.timers = None
        waiters, self.waiters = self.waiters, None
        deadlines, self.deadlines = self.deadlines, None
        return waiters or (), deadlines or ()

    def cancelled(self) -> None:
        """The lookup was cancelled with nobody to hand it to: ``ResolverClosed`` for its
        waiters when the coalescer is closing, otherwise they are cancelled too."""
        closed = self.coalescer._closed
        for fut in self.forget()[0]:
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

    def run(self, key: Hashable, fetch: Fetch, timeout: float) -> Awaitable[Any]:
        """``fetch(key, deadline)``, shared with every concurrent caller of the same key.

        Returns what the calling task must await at once: for the first caller a coroutine
        that runs the lookup in the caller's task, for a later one the future it waits on.
        (A plain function rather than a coroutine of its own, so a miss costs one coroutine
        frame less, and a joined caller none.)"""
        loop = _get_running_loop()
        deadline = loop.time() + timeout
        lookup = self._inflight.get(key)
        if lookup is None:
            return self._own(key, fetch, deadline, loop)
        self._stats.coalesced += 1
        fut = loop.create_future()
        lookup.add(fut, deadline, loop)
        return fut

    def _own(self, key: Hashable, fetch: Fetch, deadline: float,
             loop: asyncio.AbstractEventLoop) -> Coroutine[Any, Any, Any]:
        """Make the caller the owner of a new lookup of ``key``: the entry exists before the
        lookup's first step, so callers arriving meanwhile join it."""
        if self._closed:
            raise _closed(key)
        lookup = _Lookup(self, key, deadline)
        lookup.owner = _current_task(loop)
        self._inflight[key] = lookup
        return lookup.own(fetch)

    def _restart(self, key: Hashable, fetch: Fetch, patient: list[tuple[asyncio.Future[Any], float]]) -> None:
        """A lookup ran out of its deadline while these waiters still have time: they join
        the lookup of ``key`` now in flight, or a new one in a task of ours that runs until
        the latest of their deadlines (each still timed out at its own)."""
        if self._closed:
            for fut, _ in patient:
                fut.set_exception(_closed(key))
            return
        loop = _get_running_loop()
        lookup = self._inflight.get(key)
        fresh = lookup is None
        if lookup is None:
            lookup = self._inflight[key] = _Lookup(self, key, max(deadline for _, deadline in patient))
        for fut, deadline in patient:
            lookup.add(fut, deadline, loop)
        if fresh:
            try:
                lookup.task = loop.create_task(lookup.drive(fetch))
            except BaseException:
                lookup.cancelled()
                raise

    async def aclose(self) -> None:
        self._closed = True
        lookups = list(self._inflight.values())
        pending: list[asyncio.Future[Any]] = []
        for lookup in lookups:
            if lookup.task is not None:
                lookup.task.cancel()
                pending.append(lookup.task)
            elif lookup.owner is not None and lookup.closed is None:
                lookup.closed = _get_running_loop().create_future()
                lookup.owner.cancel()
                pending.append(lookup.closed)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
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
