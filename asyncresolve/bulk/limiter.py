"""A token bucket: at most ``rate`` sends per second, with a small burst."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """``await bucket.acquire()`` returns when a send is allowed; ``rate`` per second on average.

    ``burst`` tokens may be spent at once (default: a twentieth of a second's worth, at least
    one), so a limit holds over any window longer than ``burst / rate`` seconds. Waiters are
    served in order: each one reserves its slot, then sleeps until it comes.
    """

    __slots__ = ("_clock", "_next", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None, *, clock: Callable[[], float] | None = None) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        self.rate = float(rate)
        self.burst = max(1.0, float(burst) if burst is not None else self.rate / 20)
        self._clock: Callable[[], float] = clock or time.monotonic
        # The time at which the next token is free; burst tokens are "banked" before now.
        self._next = float("-inf")

    def reserve(self) -> float:
        """Take a token now; return how many seconds the caller must wait before using it."""
        now = self._clock()
        interval = 1.0 / self.rate
        earliest = now - (self.burst - 1) * interval
        start = self._next if self._next > earliest else earliest
        self._next = start + interval
        return max(0.0, start - now)

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def __repr__(self) -> str:
        return f"<TokenBucket {self.rate:g}/s burst={self.burst:g}>"
