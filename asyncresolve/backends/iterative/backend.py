"""``IterativeBackend``: the async driver that runs the sans-I/O engine over the transport."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...answer import Answer
from ...errors import InvalidQuery, ResolveError, ResolveTimeout, ServFail
from ...names import normalize_name, normalize_rdtype
from ..base import Backend, Query
from .engine import (
    Done,
    EngineConfig,
    Exchange,
    ExchangeFailed,
    NeedSubResolution,
    NoReply,
    Reply,
    Resolution,
    SendQuery,
    Tracer,
    TraceStep,
)
from .infra import Infrastructure
from .roothints import iana_root_hints
from .servers import ServerAddr, ServerStats
from .transport import Transport, TransportMalformed, TransportTimeout, TransportUnreachable

if TYPE_CHECKING:
    from ...cache import TTLCache

#: Types no iterative resolution can answer (meta types, zone transfers).
UNSUPPORTED_TYPES = frozenset({"ANY", "AXFR", "IXFR", "OPT", "TSIG", "TKEY", "MAILA", "MAILB"})

HintArg = str | tuple[str, int]


@dataclass(slots=True)
class TraceResult:
    """What ``resolve_with_trace`` returns: the outcome and every step that led to it."""

    answer: Answer | None
    error: ResolveError | None
    steps: list[TraceStep] = field(default_factory=list)
    elapsed: float = 0.0
    queries: int = 0

    def lines(self) -> list[str]:
        """The steps as text, one per line (what ``--trace`` prints)."""
        return [str(step) for step in self.steps]


@dataclass(slots=True)
class IterativeStats:
    """Counters of one backend."""

    resolutions: int = 0
    upstream_queries: int = 0
    coalesced: int = 0
    sub_resolutions: int = 0


_NO_REPLY = NoReply()


class _Outcome:
    """What one upstream exchange produced, shared with coalesced waiters."""

    __slots__ = ("elapsed", "exchange", "server")

    def __init__(self, server: ServerAddr, exchange: Exchange, elapsed: float = 0.0) -> None:
        self.server = server
        self.exchange = exchange
        self.elapsed = elapsed


class _Flight:
    """An upstream exchange in flight; ``future`` exists once a second resolution waits for it."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[_Outcome] | None = None


class IterativeBackend(Backend):
    """Resolves by walking down from the root servers, like unbound's iterator.

    :param root_hints: root servers as ``(ip, port)`` pairs or bare IPs (using ``port``);
        default the bundled IANA root servers (IPv4 and IPv6). Refused under pytest:
        tests must pass their lab's hints.
    :param port: port of every server learned from referrals (53; a lab may use another).
    :param qname_minimisation: RFC 9156 relaxed mode (default on); ``"strict"`` for strict.
    :param use_0x20: randomise query-name case and require it echoed exactly (default on:
        with the port known, it took forged-answer acceptance from 70 of 400 to 0).
    :param edns_payload: EDNS0 UDP buffer size advertised (1232).
    :param max_queries: upstream queries allowed for one resolution, sub-resolutions included.
    :param max_depth: nesting limit of NS-address sub-resolutions.
    :param max_cname_hops: CNAME/DNAME chain length limit.
    :param ipv4: / :param ipv6: address families used for servers.
    :param trace: called with every ``TraceStep`` of every resolution.
    :param cache: infrastructure cache to use before ``attach`` gives the resolver's one.
    :param initial_timeout: per-attempt timeout for servers never measured.
    """

    name = "iterative"
    #: ``resolve`` ends by the query's deadline (every wait is capped by what is left of it,
    #: then ``ResolveTimeout``): the chain spares it a timer of its own.
    honours_deadline = True

    def __init__(
        self,
        root_hints: Sequence[HintArg] | None = None,
        port: int = 53,
        *,
        qname_minimisation: bool | str = True,
        use_0x20: bool = True,
        edns_payload: int = 1232,
        max_queries: int = 64,
        max_depth: int = 4,
        max_cname_hops: int = 12,
        ipv4: bool = True,
        ipv6: bool = True,
        trace: Tracer | None = None,
        cache: TTLCache | None = None,
        initial_timeout: float = 0.6,
        lame_ttl: float = 900.0,
    ) -> None:
        if root_hints is None:
            if os.environ.get("ASYNCRESOLVE_NO_PUBLIC_ROOTS"):
                raise InvalidQuery(
                    "IterativeBackend needs root_hints: ASYNCRESOLVE_NO_PUBLIC_ROOTS forbids the bundled "
                    "IANA root servers (in tests, pass the lab's: lab.root_hints)"
                )
            hints: list[ServerAddr] = iana_root_hints(ipv4=ipv4, ipv6=ipv6)
        else:
            hints = [(h, port) if isinstance(h, str) else (str(h[0]), int(h[1])) for h in root_hints]
        if not hints:
            raise InvalidQuery("root_hints is empty")
        if isinstance(qname_minimisation, str) and qname_minimisation not in ("relaxed", "strict", "off"):
            raise InvalidQuery(f"qname_minimisation must be True, False, 'relaxed' or 'strict', "
                               f"not {qname_minimisation!r}")
        self.config = EngineConfig(
            qname_minimisation=qname_minimisation not in (False, "off"),
            minimisation_strict=qname_minimisation == "strict",
            max_queries=max_queries,
            max_depth=max_depth,
            max_cname_hops=max_cname_hops,
            ipv4=ipv4,
            ipv6=ipv6,
        )
        self.root_hints = hints
        self.port = port
        self._own_cache = cache if cache is not None else _new_cache()
        self.infra = Infrastructure(
            hints, cache=self._own_cache, port=port,
            stats=ServerStats(initial_timeout=initial_timeout), lame_ttl=lame_ttl,
        )
        self.transport = Transport(
            edns_payload=edns_payload, use_0x20=use_0x20,
            allowed=self.infra.allowed if self.infra.loopback_only else None,
        )
        self.trace = trace
        self.stats = IterativeStats()
        self._inflight: dict[tuple[str, str, str], _Flight] = {}
        self._subs: dict[tuple[str, str], asyncio.Future[Answer | ResolveError]] = {}
        self._closed = False

    # -- Backend protocol ---------------------------------------------------------------
    def supports(self, rdtype: str) -> bool:
        return rdtype not in UNSUPPORTED_TYPES

    def attach(self, cache: TTLCache | None) -> None:
        """Keep delegations, NS addresses and lame marks in the resolver's shared cache."""
        if cache is not None:
            self.infra.cache = cache

    async def resolve(self, query: Query) -> Answer:
        result = await self._resolve(query.name, query.rdtype, query.deadline, self.trace)
        if isinstance(result, Answer):
            return result
        raise result

    async def aclose(self) -> None:
        self._closed = True
        self.transport.close()

    # -- tracing ------------------------------------------------------------------------
    async def resolve_with_trace(self, name: str, rdtype: str | int = "A", timeout: float = 5.0) -> TraceResult:
        """Resolve and return every step (server asked, outcome, time) with the result.

        Errors are returned in ``TraceResult.error``, not raised (except invalid input).
        """
        qname = normalize_name(name)
        qtype = normalize_rdtype(rdtype)
        steps: list[TraceStep] = []
        outer = self.trace

        def tracer(step: TraceStep) -> None:
            steps.append(step)
            if outer is not None:
                outer(step)

        loop = asyncio.get_running_loop()
        started = time.monotonic()
        before = self.stats.upstream_queries
        result = await self._resolve(qname, qtype, loop.time() + timeout, tracer)
        elapsed = time.monotonic() - started
        queries = self.stats.upstream_queries - before
        if isinstance(result, Answer):
            return TraceResult(result, None, steps, elapsed, queries)
        return TraceResult(None, result, steps, elapsed, queries)

    # -- the driver -------------------------------------------------------------------------
    def _resolve(
        self, qname: str, qtype: str, deadline: float, tracer: Tracer | None
    ) -> Coroutine[Any, Any, Answer | ResolveError]:
        # a plain function returning the driver's coroutine: one coroutine frame less per
        # resolution (each is walked by the garbage collector while the query is out)
        self.stats.resolutions += 1
        resolution = Resolution(qname, qtype, self.infra, self.config, tracer=tracer)
        return self._run(resolution, deadline)

    async def _run(self, res: Resolution, deadline: float) -> Answer | ResolveError:
        loop = asyncio.get_running_loop()
        steps = 0
        while True:
            action = res.next_action()
            steps += 1
            if steps % 16 == 0:
                await asyncio.sleep(0)  # steps that send nothing (cached failures) still yield
            if not isinstance(action, Done) and loop.time() >= deadline:
                return self._timeout(res)
            if isinstance(action, SendQuery):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return self._timeout(res)
                await self._exchange(res, action, min(action.timeout, remaining), remaining)
            elif isinstance(action, NeedSubResolution):
                await self._sub_resolve(res, action, deadline)
            else:
                assert isinstance(action, Done)
                if action.answer is not None:
                    return action.answer
                assert action.error is not None
                return action.error

    @staticmethod
    def _timeout(res: Resolution) -> ResolveTimeout:
        return ResolveTimeout(name=res.qname, rdtype=res.qtype, source="iterative")

    async def _exchange(self, res: Resolution, action: SendQuery, timeout: float, limit: float) -> None:
        key = (action.zone, action.qname, action.qtype)
        pending = self._inflight.get(key)
        if pending is not None:
            # the same question to the same zone is already on the wire: share its reply
            self.stats.coalesced += 1
            started = time.monotonic()
            if pending.future is None:
                pending.future = asyncio.get_running_loop().create_future()
            try:
                outcome = await asyncio.wait_for(asyncio.shield(pending.future), timeout)
            except TimeoutError:
                outcome = _Outcome(action.server, _NO_REPLY)
            self._deliver(res, outcome, time.monotonic() - started)
            return
        flight = _Flight()
        self._inflight[key] = flight
        try:
            result = await self._ask(action, timeout, limit)
        except BaseException:
            del self._inflight[key]
            if flight.future is not None:  # made only when another resolution waits on it
                flight.future.set_result(_Outcome(action.server, ExchangeFailed("cancelled")))
            raise
        del self._inflight[key]
        if flight.future is not None:
            flight.future.set_result(result)
        self._deliver(res, result, result.elapsed)

    async def _ask(self, action: SendQuery, timeout: float, limit: float) -> _Outcome:
        server = action.server
        stats = self.infra.servers
        self.stats.upstream_queries += 1
        started = time.monotonic()
        try:
            response = await self.transport.query(
                server, action.qname, action.qtype, timeout, limit=limit, edns=action.edns,
            )
        except TransportTimeout:
            stats.record_timeout(server)
            return _Outcome(server, _NO_REPLY, time.monotonic() - started)
        except TransportUnreachable as exc:
            stats.record_unreachable(server)
            return _Outcome(server, ExchangeFailed(str(exc)), time.monotonic() - started)
        except TransportMalformed as exc:
            return _Outcome(server, ExchangeFailed(str(exc)), time.monotonic() - started)
        except OSError as exc:
            stats.record_unreachable(server)
            return _Outcome(server, ExchangeFailed(str(exc)), time.monotonic() - started)
        elapsed = time.monotonic() - started
        stats.record_rtt(server, elapsed)
        return _Outcome(server, Reply(response), elapsed)

    @staticmethod
    def _deliver(res: Resolution, outcome: _Outcome, elapsed: float) -> None:
        res.deliver(outcome.server, outcome.exchange, elapsed)

    async def _sub_resolve(self, res: Resolution, need: NeedSubResolution, deadline: float) -> None:
        key = (need.name, need.rdtype)
        pending = self._subs.get(key)
        if pending is not None:
            self.stats.coalesced += 1
            remaining = deadline - asyncio.get_running_loop().time()
            shared: Answer | ResolveError
            try:
                shared = await asyncio.wait_for(asyncio.shield(pending), max(remaining, 0.0))
            except TimeoutError:
                shared = ResolveTimeout(name=need.name, rdtype=need.rdtype, source="iterative")
            res.sub_resolved(need, shared)
            return
        self.stats.sub_resolutions += 1
        future: asyncio.Future[Answer | ResolveError] = asyncio.get_running_loop().create_future()
        self._subs[key] = future
        result: Answer | ResolveError = ServFail(name=need.name, rdtype=need.rdtype, source="iterative")
        try:
            result = await self._run(res.sub_resolution(need), deadline)
        finally:
            del self._subs[key]
            future.set_result(result)
        res.sub_resolved(need, result)


def _new_cache() -> Any:
    from ...cache import TTLCache

    return TTLCache(max_entries=50_000)


def trace_printer(write: Callable[[str], Any] = print) -> Tracer:
    """A ``trace`` callback that prints each step as one line."""

    def tracer(step: TraceStep) -> None:
        write(str(step))

    return tracer
