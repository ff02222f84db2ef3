"""``PoolBackend``: several upstream servers behind one backend, for bulk runs.

One backend per upstream (a ``CaresBackend`` with a single server by default). Queries go
round-robin over the servers still in use, each through its own rate limit when one is
set. Every outcome is tallied per server; a server whose share of timeouts and SERVFAILs is
far above the others' (``failure_factor`` times the median of the rest, and at least
``min_failure_rate``, over at least ``min_samples`` queries) stops receiving queries and a
warning is logged (and passed to ``on_disable``). The last server in use is never dropped:
when every server fails alike, the names are what fails, not a server.

A bulk run learns which server answered through ``current_upstream`` (a context variable
holding a one-item list the run passes down; the resolver's lookup task inherits it), so
answers stay as the backend made them and cost no copy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import statistics
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend, Query
from ..errors import ResolveError, ResolveTimeout, ServFail
from .limiter import TokenBucket

if TYPE_CHECKING:
    from ..answer import Answer
    from ..cache import TTLCache

log = logging.getLogger("asyncresolve.bulk")

#: Set by a bulk run to ``[None]`` around a lookup; the pool writes the server's address into it.
current_upstream: ContextVar[list[str | None] | None] = ContextVar("asyncresolve_bulk_upstream", default=None)


class Upstream:
    """One server of the pool and its tallies (halved every ``window`` queries: recent counts weigh most)."""

    __slots__ = ("address", "backend", "bucket", "disabled", "failures", "queries", "total_queries")

    def __init__(self, address: str, backend: Backend, rate: float | None) -> None:
        self.address = address
        self.backend = backend
        self.bucket = TokenBucket(rate) if rate else None
        self.queries = 0
        self.failures = 0
        self.total_queries = 0
        self.disabled = False

    @property
    def failure_rate(self) -> float:
        return self.failures / self.queries if self.queries else 0.0

    def __repr__(self) -> str:
        state = " disabled" if self.disabled else ""
        return f"<Upstream {self.address} {self.failures}/{self.queries} failed{state}>"


def _cares_for(address: str, timeout: float, *, dns0x20: bool = True, udp_max_queries: int = 4) -> Backend:
    from ..backends.cares import CaresBackend

    # One try per query: retries belong to the bulk runner (another server, a back-off), and a
    # query that c-ares no longer retransmits is not in flight at the server either.
    return CaresBackend([address], timeout=timeout, tries=1, max_timeout=timeout, dns0x20=dns0x20,
                        udp_max_queries=udp_max_queries)


class PoolBackend(Backend):
    """Spread queries over ``nameservers`` (``"ip"``, ``"ip:port"``, ``"[v6]:port"``).

    :param rate_per_server: queries per second allowed to each server (None: no limit).
    :param timeout: per-try timeout given to each server's backend.
    :param backend_factory: ``(address, timeout) -> Backend``; default a one-server ``CaresBackend``.
    :param dns0x20, udp_max_queries: the default ``CaresBackend``'s forgery resistance
        (see ``CaresBackend``; ignored with another ``backend_factory``).
    """

    name = "pool"
    honours_deadline = True

    def __init__(
        self,
        nameservers: Sequence[str],
        *,
        rate_per_server: float | None = None,
        timeout: float = 2.0,
        port: int = 53,
        backend_factory: Callable[[str, float], Backend] | None = None,
        dns0x20: bool = True,
        udp_max_queries: int = 4,
        min_samples: int = 50,
        failure_factor: float = 4.0,
        min_failure_rate: float = 0.3,
        window: int = 2000,
        on_disable: Callable[[Upstream, str], None] | None = None,
    ) -> None:
        if not nameservers:
            raise ValueError("a pool needs at least one nameserver")
        if rate_per_server is not None and not rate_per_server > 0:
            raise ValueError(f"rate_per_server must be positive, not {rate_per_server!r}")
        addresses = [_with_port(server, port) for server in nameservers]
        if backend_factory is None:
            backend_factory = functools.partial(_cares_for, dns0x20=dns0x20, udp_max_queries=udp_max_queries)
        self.upstreams = [Upstream(a, backend_factory(a, timeout), rate_per_server) for a in addresses]
        self.supported_types = _common_types(u.backend for u in self.upstreams)
        self._active = list(self.upstreams)
        self._next = 0
        self.min_samples = min_samples
        self.failure_factor = failure_factor
        self.min_failure_rate = min_failure_rate
        self.window = window
        self.on_disable = on_disable
        self._since_check = 0

    @property
    def active(self) -> list[Upstream]:
        """The servers still receiving queries."""
        return list(self._active)

    def attach(self, cache: TTLCache | None) -> None:
        for upstream in self.upstreams:
            upstream.backend.attach(cache)

    def _pick(self) -> Upstream:
        active = self._active
        index = self._next % len(active)
        self._next = index + 1
        return active[index]

    async def resolve(self, query: Query) -> Answer:
        upstream = self._pick()
        holder = current_upstream.get()
        if holder is not None:
            holder[0] = upstream.address
        if upstream.bucket is not None:
            waited = await upstream.bucket.acquire()
            if waited:  # the deadline starts when the query is sent, not while it waits its turn
                query = Query(query.name, query.rdtype, query.deadline + waited)
        backend = upstream.backend
        try:
            if backend.honours_deadline:
                answer = await backend.resolve(query)
            else:
                async with asyncio.timeout_at(query.deadline):
                    answer = await backend.resolve(query)
        except ResolveError as error:
            self._tally(upstream, counts_against(error))
            raise
        except TimeoutError:
            self._tally(upstream, True)
            raise ResolveTimeout(name=query.name, rdtype=query.rdtype, source=backend.name) from None
        self._tally(upstream, False)
        return answer

    # -- health -------------------------------------------------------------------
    def _tally(self, upstream: Upstream, failed: bool) -> None:
        upstream.queries += 1
        upstream.total_queries += 1
        if failed:
            upstream.failures += 1
        if upstream.queries >= self.window:
            upstream.queries //= 2
            upstream.failures //= 2
        self._since_check += 1
        if self._since_check >= 32 and len(self._active) > 1:
            self._since_check = 0
            self._check_health()

    def _check_health(self) -> None:
        for upstream in list(self._active):
            if upstream.queries < self.min_samples or len(self._active) < 2:
                continue
            others = [u.failure_rate for u in self._active if u is not upstream and u.queries >= self.min_samples]
            if not others:
                continue
            baseline = statistics.median(others)
            rate = upstream.failure_rate
            if rate >= self.min_failure_rate and rate > self.failure_factor * max(baseline, 0.01):
                self._disable(upstream, f"{rate:.0%} of its last {upstream.queries} queries timed out or "
                                        f"failed, against {baseline:.0%} for the other servers")

    def _disable(self, upstream: Upstream, reason: str) -> None:
        upstream.disabled = True
        self._active.remove(upstream)
        log.warning("no longer sending to %s: %s", upstream.address, reason)
        if self.on_disable is not None:
            self.on_disable(upstream, reason)

    async def aclose(self) -> None:
        await asyncio.gather(*(u.backend.aclose() for u in self.upstreams), return_exceptions=True)

    def __repr__(self) -> str:
        return f"<PoolBackend {', '.join(u.address for u in self.upstreams)}>"


def counts_against(error: ResolveError) -> bool:
    """Whether ``error`` counts against the server's health (a timeout or a SERVFAIL; not a
    REFUSED, and not an answer about the name)."""
    return isinstance(error, ResolveTimeout) or (isinstance(error, ServFail) and error.rcode == "SERVFAIL")


def _with_port(server: str, port: int) -> str:
    text = server.strip()
    if text.startswith("["):
        return text if "]:" in text else f"{text}:{port}"
    if text.count(":") == 1:
        return text
    if ":" in text:  # a bare IPv6 address
        return f"[{text}]:{port}"
    return f"{text}:{port}"


def _common_types(backends: Iterable[Any]) -> frozenset[str] | None:
    types: frozenset[str] | None = None
    for backend in backends:
        supported = backend.supported_types
        if supported is None:
            continue
        types = supported if types is None else types & supported
    return types
