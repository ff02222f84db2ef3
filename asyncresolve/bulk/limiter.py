"""A token bucket: at most ``rate`` sends per second, with a small burst."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

#: A token is whole a hair early: clock readings are floats, and a timer set for the moment
#: the token is full must not find 0.9999999 of it and sleep again.
_WHOLE = 1 - 1e-9


class TokenBucket:
    """``await bucket.acquire()`` returns when a send is allowed; ``rate`` per second on average.

    Tokens accrue at ``rate`` per second up to ``burst`` (default: a twentieth of a second's
    worth, at least one), so in any window of ``w`` seconds at most ``burst + rate * w`` sends
    go out. Waiters are served in order, each given its token when it is free, not promised a
    time slot in advance: after the event loop stalls, the waiters that missed their turn do
    not all go out at once (at most ``burst`` of them do), and pacing starts again from there.
    """

    __slots__ = ("_clock", "_loop", "_stamp", "_timer", "_tokens", "_waiters", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None, *, clock: Callable[[], float] | None = None) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        self.rate = float(rate)
        self.burst = max(1.0, float(burst) if burst is not None else self.rate / 20)
        self._clock: Callable[[], float] = clock or time.monotonic
        self._tokens = self.burst
        self._stamp = self._clock()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token if one is free and nobody waits before us; never waits."""
        if self._waiters:
            return False
        self._refill()
        if self._tokens >= _WHOLE:
            self._tokens -= 1
            return True
        return False

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        if self.try_acquire():
            return 0.0
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a bucket outliving its event loop (a closed loop's timer never fires)
            self._waiters.clear()
            self._timer = None
            self._loop = loop
        started = self._clock()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        self._arm(loop)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # given a token it will not use: hand it on
                self._tokens = min(self.burst, self._tokens + 1)
                self._grant()
            raise
        return self._clock() - started

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None and self._waiters:
            self._timer = loop.call_later(max(0.0, (1 - self._tokens) / self.rate), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._grant()

    def _grant(self) -> None:
        self._refill()
        waiters = self._waiters
        while waiters and self._tokens >= _WHOLE:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter takes nothing
                self._tokens -= 1
                waiter.set_result(None)
        if self._loop is not None:
            self._arm(self._loop)

    def __repr__(self) -> str:
        return f"<TokenBucket {self.rate:g}/s burst={self.burst:g}>"
