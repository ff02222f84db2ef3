"""Upstream server statistics and selection: smoothed RTT, timeouts, back-off.

Each server address keeps a smoothed round-trip time and its variance (RFC 6298
style) and the number of queries in flight to it. Selection picks the lowest expected
wait: the SRTT, grown by the queries already waiting on that server; servers never
measured are explored first, but each query in flight to one that has not answered yet
counts as a full initial timeout, so a burst spreads over the unknown servers instead of
piling onto one that may be a black hole.
Every timeout doubles the server's SRTT, to at least the wait that expired (pushing it
down the list); after a few
timeouts in a row, or an ICMP-style error, the server is "down" for a back-off period
and is only used again when no other candidate is left (a probe), so unreachable
servers are retried later rather than never.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable

ServerAddr = tuple[str, int]

_rng = random.Random()


class _Stat:
    __slots__ = ("down_until", "fails", "inflight", "inflight_until", "rttvar", "srtt")

    def __init__(self) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.fails = 0
        self.down_until = 0.0
        self.inflight = 0
        self.inflight_until = 0.0  # a count not settled by then is stale (an abandoned query)


class ServerStats:
    """Per-address SRTT and failure state, shared by all resolutions of one backend.

    :param initial_timeout: per-attempt timeout of a server never measured.
    :param min_timeout: / :param max_timeout: clamps of the computed timeout.
    :param down_after: consecutive timeouts after which a server is considered down.
    :param max_backoff: longest time a server stays down before it is probed again.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_timeout: float = 0.6,
        min_timeout: float = 0.2,
        max_timeout: float = 3.0,
        down_after: int = 3,
        max_backoff: float = 60.0,
        max_entries: int = 20_000,
    ) -> None:
        self.clock = clock
        self.initial_timeout = initial_timeout
        self.min_timeout = min_timeout
        self.max_timeout = max_timeout
        self.down_after = down_after
        self.max_backoff = max_backoff
        self.max_entries = max_entries
        self._stats: dict[ServerAddr, _Stat] = {}

    def _get(self, server: ServerAddr) -> _Stat:
        stat = self._stats.get(server)
        if stat is None:
            if len(self._stats) >= self.max_entries:
                self._stats.clear()
            stat = self._stats[server] = _Stat()
        return stat

    # -- queries in flight ------------------------------------------------------------
    def started(self, server: ServerAddr, timeout: float) -> None:
        """A query to ``server`` is about to be sent and waited for up to ``timeout``."""
        stat = self._get(server)
        now = self.clock()
        if stat.inflight_until < now:
            stat.inflight = 0
        stat.inflight += 1
        stat.inflight_until = max(stat.inflight_until, now + timeout)

    def finished(self, server: ServerAddr) -> None:
        """The query to ``server`` got its outcome (reply, timeout or failure)."""
        stat = self._stats.get(server)
        if stat is not None and stat.inflight > 0:
            stat.inflight -= 1

    def inflight(self, server: ServerAddr) -> int:
        stat = self._stats.get(server)
        if stat is None or stat.inflight_until < self.clock():
            return 0
        return stat.inflight

    # -- what the transport measured ----------------------------------------------
    def record_rtt(self, server: ServerAddr, rtt: float) -> None:
        """A response arrived after ``rtt`` seconds."""
        stat = self._get(server)
        if stat.srtt is None or stat.fails:
            stat.srtt = rtt
            stat.rttvar = rtt / 2
        else:
            stat.rttvar = 0.75 * stat.rttvar + 0.25 * abs(stat.srtt - rtt)
            stat.srtt = 0.875 * stat.srtt + 0.125 * rtt
        stat.fails = 0
        stat.down_until = 0.0

    def record_timeout(self, server: ServerAddr) -> None:
        """No response in time: the SRTT doubles, and is at least the wait that just expired
        (so a silent server drops below responsive ones at once, as unbound's RTO does);
        after ``down_after`` in a row, back off."""
        waited = self.timeout_for(server)
        stat = self._get(server)
        stat.fails += 1
        base = stat.srtt if stat.srtt is not None else self.initial_timeout
        stat.srtt = min(self.max_timeout, max(base * 2, waited))
        if stat.fails >= self.down_after:
            backoff = min(self.max_backoff, 2.0 ** (stat.fails - self.down_after + 1))
            stat.down_until = self.clock() + backoff

    def record_unreachable(self, server: ServerAddr) -> None:
        """The network refused (no route, port unreachable...): down for a while."""
        stat = self._get(server)
        stat.fails += 1
        stat.srtt = self.max_timeout
        stat.down_until = self.clock() + min(self.max_backoff, 5.0 * stat.fails)

    # -- what the engine asks ----------------------------------------------------------
    def srtt(self, server: ServerAddr) -> float | None:
        stat = self._stats.get(server)
        return None if stat is None else stat.srtt

    def is_down(self, server: ServerAddr) -> bool:
        stat = self._stats.get(server)
        return stat is not None and stat.down_until > self.clock()

    def timeout_for(self, server: ServerAddr) -> float:
        """The per-attempt timeout for ``server``: SRTT + 4 * RTTVAR, clamped."""
        stat = self._stats.get(server)
        if stat is None or stat.srtt is None:
            return self.initial_timeout
        # after timeouts the SRTT was already doubled per timeout: use it as it is
        value = stat.srtt if stat.fails else stat.srtt + 4 * stat.rttvar
        return min(self.max_timeout, max(self.min_timeout, value))

    def choose(self, candidates: Iterable[ServerAddr]) -> ServerAddr | None:
        """The best candidate: lowest expected wait (SRTT and queries in flight), unknown
        servers explored first, down ones last."""
        best: ServerAddr | None = None
        best_score = float("inf")
        now = self.clock()
        stats = self._stats
        for server in candidates:
            stat = stats.get(server)
            if stat is None:
                score = _rng.random() * 0.001
            else:
                waiting = stat.inflight if stat.inflight_until >= now else 0
                if stat.srtt is None:
                    score = _rng.random() * 0.001 + waiting * self.initial_timeout
                else:
                    score = stat.srtt * (1.0 + 0.05 * waiting)
                if stat.down_until > now:
                    score += 1000.0 + stat.down_until - now
            if score < best_score:
                best, best_score = server, score
        return best
