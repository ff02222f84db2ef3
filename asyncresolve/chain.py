"""The chain of backends and its explicit fallthrough policy.

For each query the chain walks the backends in order, skipping those that cannot answer
the record type:

* ``NotMine`` ("not mine": a name absent from the hosts file) always passes to the next.
* An answer ends the walk.
* ``NXDomain`` / ``NoAnswer`` are final by default: a DNS source said so.
* ``ResolveTimeout``, ``ServFail`` and ``NetworkError`` fall back to the next capable
  backend by default. Any unexpected exception from a backend is logged and treated
  like a failure of that backend.
* When no backend answered, the caller gets the most informative error seen
  (negative > server failure > network error > timeout > no backend), with every
  backend's error listed in its ``attempts`` attribute.

The whole walk shares the query's deadline; a backend is cut off when it is reached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .answer import Answer
from .backends.base import Backend, NotMine, Query
from .errors import (
    NegativeAnswer,
    NetworkError,
    NoAnswer,
    NoBackend,
    NXDomain,
    ResolveError,
    ResolveTimeout,
    ServFail,
)
from .stats import ResolverStats

log = logging.getLogger(__name__)
_get_running_loop = asyncio.get_running_loop
_perf_counter = time.perf_counter


@dataclass(frozen=True)
class FallthroughPolicy:
    """Which outcomes of a backend let the chain ask the next one."""

    on_timeout: bool = True
    on_servfail: bool = True
    on_network_error: bool = True
    on_nxdomain: bool = False
    on_nodata: bool = False

    def falls_through(self, error: ResolveError) -> bool:
        """Whether the chain asks the next backend after a backend raised *error*."""
        if isinstance(error, NXDomain):
            return self.on_nxdomain
        if isinstance(error, NoAnswer):
            return self.on_nodata
        if isinstance(error, ResolveTimeout):
            return self.on_timeout
        if isinstance(error, ServFail):
            return self.on_servfail
        if isinstance(error, NetworkError):
            return self.on_network_error
        return False


_RANK = ((NegativeAnswer, 5), (ServFail, 4), (NetworkError, 3), (ResolveTimeout, 2), (ResolveError, 1))


def _rank(error: ResolveError) -> int:
    for cls, rank in _RANK:
        if isinstance(error, cls):
            return rank
    return 0


class Chain:
    def __init__(
        self,
        backends: Sequence[Backend],
        policy: FallthroughPolicy | None = None,
        stats: ResolverStats | None = None,
    ) -> None:
        self.backends = tuple(backends)
        self.policy = policy or FallthroughPolicy()
        self.stats = stats or ResolverStats()
        #: record type -> the backends that can answer it, in order (``supports`` asked once per type)
        self._capable: dict[str, tuple[Backend, ...]] = {}

    def supports(self, rdtype: str) -> bool:
        return any(b.supports(rdtype) for b in self.backends)

    def _capable_of(self, rdtype: str) -> tuple[Backend, ...]:
        # apart from ``resolve``: a generator there would make ``query`` a cell on every call
        backends = self._capable[rdtype] = tuple(b for b in self.backends if b.supports(rdtype))
        return backends

    async def resolve(self, query: Query) -> Answer:
        # No closure, generator or list is made on the way to an answer: while a lookup is in
        # flight, each would be one more object for the garbage collector to scan.
        try:
            backends = self._capable[query.rdtype]
        except KeyError:
            backends = self._capable_of(query.rdtype)
        failures: list[tuple[str, ResolveError]] | None = None
        first = True
        for backend in backends:
            # the first backend is asked as the caller's deadline starts: its clock read (and
            # the getpid() system call inside get_running_loop on CPython 3.11) is spared
            if not first and query.deadline <= _get_running_loop().time():
                if failures is None:
                    failures = []
                failures.append((backend.name, _timeout(query, backend.name)))
                break
            first = False
            stats = self.stats.backend(backend.name)
            started = _perf_counter()
            try:
                if backend.honours_deadline:
                    answer = await backend.resolve(query)
                else:
                    async with asyncio.timeout_at(query.deadline):
                        answer = await backend.resolve(query)
            except NotMine:
                stats.passes += 1
                continue
            except ResolveError as error:
                stats.record_latency(_perf_counter() - started)
                if error.source is None:
                    error.source = backend.name
                if isinstance(error, NegativeAnswer):
                    stats.negatives += 1
                else:
                    stats.errors += 1
                if not self.policy.falls_through(error):
                    raise
                failure = error
            except TimeoutError:
                stats.errors += 1
                stats.record_latency(_perf_counter() - started)
                timeout = _timeout(query, backend.name)
                if not self.policy.on_timeout:
                    raise timeout from None
                failure = timeout
            except OSError as exc:
                stats.errors += 1
                network = NetworkError(str(exc), name=query.name, rdtype=query.rdtype, source=backend.name)
                if not self.policy.on_network_error:
                    raise network from exc
                failure = network
            except Exception as exc:  # a backend bug must not take the caller down
                stats.errors += 1
                stats.crashes += 1
                log.exception("backend %s failed on %s %s", backend.name, query.name, query.rdtype,
                              extra={"backend_crash": backend.name})
                failure = ResolveError(f"backend {backend.name} failed: {exc!r}", name=query.name,
                                       rdtype=query.rdtype, source=backend.name)
            else:
                stats.answers += 1
                stats.record_latency(_perf_counter() - started)
                return answer
            if failures is None:
                failures = []
            failures.append((backend.name, failure))
        raise self._most_informative(query, failures or [])

    @staticmethod
    def _most_informative(query: Query, failures: list[tuple[str, ResolveError]]) -> ResolveError:
        if not failures:
            error: ResolveError = NoBackend(name=query.name, rdtype=query.rdtype)
        else:
            error = max((e for _, e in failures), key=_rank)
        error.attempts = failures  # type: ignore[attr-defined]  # each backend's error, on the one raised
        return error


def _timeout(query: Query, source: str) -> ResolveTimeout:
    return ResolveTimeout(name=query.name, rdtype=query.rdtype, source=source)
