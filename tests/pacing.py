"""How far a series of send (or arrival) times goes beyond what a token bucket allows."""

from __future__ import annotations


def excess_over_rate(times: list[float], rate: float) -> float:
    """The largest ``count - rate * span`` over every run of consecutive times: at most the
    bucket's burst when a limit of ``rate`` per second holds."""
    return max(j - i + 1 - rate * (times[j] - times[i]) for i in range(len(times)) for j in range(i, len(times)))
