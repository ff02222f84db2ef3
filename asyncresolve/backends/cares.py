"""The c-ares backend: every common record type with its own TTL, at close to raw c-ares speed.

``CaresBackend`` sends queries with c-ares (the library under pycares and aiodns) to the
configured nameservers and turns the replies into the same immutable ``Answer`` and record
types as every other backend.

How it drives c-ares, and why:

* One c-ares channel per backend, shared by every query, created at first use in a worker
  thread (``ares_init_options`` reads ``/etc/resolv.conf``, and so do we when no nameservers
  are given: neither blocks the event loop). The channel, its sockets and timers belong to
  the loop that created it; used from a later loop (a second ``asyncio.run()``, pytest's
  per-test loops) the backend retires the old channel and builds a new one on the running
  loop. Two loops running at once cannot share one backend: that raises ``ResolveError``.
* A relative name (typed without its trailing dot) goes through resolv.conf's ``search``
  list under its ``ndots`` rule, as glibc's ``res_search`` does (``resolvconf.search``).
* Queries go through pycares's cffi layer (``pycares._cares``: ``ares_query_dnsrec`` with a
  callback of our own) rather than ``pycares.Channel.query``: the public call throws away the
  message of NXDOMAIN/NODATA replies (we need its SOA for the negative TTL), joins TXT
  character-strings and cuts CAA values at NUL bytes. The dependency set is unchanged
  (pycares, which aiodns pins); the private surface used is checked at import time.
* c-ares's own query cache (on by default in c-ares >= 1.23, answers kept up to an hour and
  not switchable from ``pycares.Channel``) is turned off (``ARES_OPT_QUERY_CACHE`` with
  ``qcache_max_ttl=0``): the resolver's shared ``TTLCache`` is the only cache users configure
  and see. Pass ``qcache_max_ttl`` > 0 to turn it back on.
* The loop integration defaults to ``sock_state_cb``: c-ares tells us its sockets, the
  asyncio loop watches them and we call ``ares_process_fd`` on the loop thread, so the
  callback sets the future directly. The alternative, c-ares's own event thread
  (``loop_mode="thread"``), makes every result cross threads: the callback runs on the
  c-ares thread, contends for the GIL with the loop and needs a wake-up of the loop (we batch
  them). Measured in ``benchmarks/bench_cares.py`` the socket-callback mode is the faster
  under load (numbers in the module docstring there). On Linux the sockets go into an epoll
  set of ours that the loop watches as one descriptor (``_fdwatch``): c-ares opens a fresh
  socket every ``udp_max_queries`` queries, and a loop registration per socket cost more
  than the socket itself.
* Every query keeps its own deadline: it fails with ``ResolveTimeout`` at ``query.deadline``
  however long c-ares's ``timeout`` x ``tries`` would still wait. The deadlines go into one
  heap per channel swept by a single loop timer armed for the earliest deadline still
  pending, rather than one ``loop.call_at`` per query (a ``TimerHandle`` made and cancelled
  for every query cost about 7 % of a cold lookup's CPU time); answered queries leave their
  heap entry behind, and the sweep drops those when it reaches them (or a compaction, once
  they outnumber the pending ones twice over).
  c-ares has no way to cancel one query (``ares_cancel`` cancels all), so an expired or
  cancelled query is detached: its entry is removed at once, and when c-ares finishes it (an
  answer or its own timeout) the callback finds nothing and returns.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import ipaddress
import itertools
import os
import threading
import time
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import Future as ThreadFuture
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import pycares

from ..errors import (
    InvalidName,
    NetworkError,
    NoAnswer,
    NXDomain,
    ResolveError,
    ResolverClosed,
    ResolveTimeout,
    ServFail,
)
from ..names import normalize_name
from . import _fdwatch, resolvconf
from .base import Backend, NotMine, Outcome, Query

try:
    # pycares's private cffi layer (pinned and contract-tested) is not re-exported by its typed API
    from pycares import _ffi as ffi  # type: ignore[attr-defined]
    from pycares import _lib as lib  # type: ignore[attr-defined]

    from . import _cares_records as _conv

    _MISSING = [
        n for n in (
            "ares_query_dnsrec", "ares_init_options", "ares_set_servers_csv", "ares_process_fd",
            "ares_timeout", "ares_cancel", "ares_destroy", "ares_queue_wait_empty",
            "ares_dns_record_rr_cnt", "_sock_state_cb",
        ) if not hasattr(lib, n)
    ]
    if _MISSING or "qcache_max_ttl" not in dict(ffi.typeof("struct ares_options").fields):
        raise ImportError(f"pycares {pycares.__version__} lacks {_MISSING or 'qcache_max_ttl'}")
except ImportError as exc:  # pragma: no cover - only with an incompatible pycares
    raise ImportError(
        f"asyncresolve's c-ares backend needs pycares 5.x (with c-ares >= 1.34): {exc}"
    ) from exc

if TYPE_CHECKING:
    from ..answer import Answer

__all__ = ["CaresBackend", "read_resolv_conf"]

SOURCE = "cares"

# Not exported by pycares's cffi module; values from c-ares's ares.h (stable ABI since 1.23).
_ARES_OPT_QUERY_CACHE = 1 << 21
_ARES_OPT_MAXTIMEOUTMS = 1 << 20
_ARES_OPT_UDP_MAX_QUERIES = 1 << 19
_ARES_FLAG_DNS0x20 = 1 << 10  # c-ares >= 1.33: random query-name case, echoed exactly (UDP)

_SUCCESS = lib.ARES_SUCCESS
_NEVER = float("inf")
#: Entries of answered queries the deadline heap may hold beyond twice those pending.
_HEAP_SLACK = 4096
#: Timers may run this much before their time (as asyncio's own ``_clock_resolution``).
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution
_SOCKET_BAD = lib.ARES_SOCKET_BAD
_CLASS_IN = lib.ARES_CLASS_IN
_NULL = ffi.NULL
_ENOTFOUND = lib.ARES_ENOTFOUND
_ENODATA = lib.ARES_ENODATA
_CALLBACK_TYPE = "void(void *, ares_status_t, size_t, ares_dns_record_t *)"

_RCODE_ERRORS = {
    lib.ARES_ESERVFAIL: "SERVFAIL",
    lib.ARES_EREFUSED: "REFUSED",
    lib.ARES_ENOTIMP: "NOTIMP",
    lib.ARES_EFORMERR: "FORMERR",
}

LoopMode = Literal["sockets", "thread"]

#: ``receive_buffer="auto"``: this ``SO_RCVBUF`` for a socket that may carry more than
#: ``_SMALL_SOCKET_QUERIES`` queries at once, the kernel's default for one that may not.
_BIG_RECEIVE_BUFFER = 1 << 20
_SMALL_SOCKET_QUERIES = 64


def _strerror(status: int) -> str:
    text: str | bytes = pycares.errno.strerror(status)
    return text.decode("ascii", "replace") if isinstance(text, bytes) else text


def _error(status: int, query: Query) -> ResolveError:
    """The exception for a failed c-ares status (no message to read)."""
    name, rdtype = query.name, query.rdtype
    if status == _ENOTFOUND:
        return NXDomain(name=name, rdtype=rdtype, source=SOURCE)
    if status == _ENODATA:
        return NoAnswer(name=name, rdtype=rdtype, source=SOURCE)
    if status in _RCODE_ERRORS:
        return ServFail(name=name, rdtype=rdtype, source=SOURCE, rcode=_RCODE_ERRORS[status])
    if status == lib.ARES_ETIMEOUT:
        return ResolveTimeout(name=name, rdtype=rdtype, source=SOURCE)
    if status == lib.ARES_EBADNAME:
        return InvalidName(f"c-ares cannot encode the name {name!r}", name=name, rdtype=rdtype, source=SOURCE)
    if status in (lib.ARES_ECANCELLED, lib.ARES_EDESTRUCTION):
        return ResolverClosed("the c-ares backend was closed", name=name, rdtype=rdtype, source=SOURCE)
    text = _strerror(status)
    return NetworkError(f"{text} resolving {name} {rdtype}", name=name, rdtype=rdtype, source=SOURCE)


def _outcome(status: int, dnsrec: Any, query: Query, code: int) -> Answer | BaseException:
    try:
        if status == _SUCCESS:
            return _conv.to_answer(dnsrec, query.name, query.rdtype, code)
        if status == _ENOTFOUND and dnsrec != _NULL:
            return _conv.negative(NXDomain, dnsrec, query.name, query.rdtype)
        if status == _ENODATA and dnsrec != _NULL:
            return _conv.negative(NoAnswer, dnsrec, query.name, query.rdtype)
        return _error(status, query)
    except Exception as exc:  # noqa: BLE001 - a malformed reply fails the query, never the loop
        if isinstance(exc, ResolveError):
            return exc
        failure = NetworkError(
            f"cannot decode the reply for {query.name} {query.rdtype}: {exc!r}",
            name=query.name, rdtype=query.rdtype, source=SOURCE,
        )
        failure.__cause__ = exc
        return failure


# -- nameservers --------------------------------------------------------------------------

def read_resolv_conf(path: str = "/etc/resolv.conf") -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf (blocking: call it in a thread).

    Returns ``["127.0.0.1"]`` when the file is missing or names none, as glibc does.
    The whole file (search list, options) is ``resolvconf.read_resolv_conf``.
    """
    return list(resolvconf.read_resolv_conf(path).nameservers)


def _server_csv(servers: Iterable[str | tuple[str, int]], port: int) -> str:
    """c-ares's server list: ``ip``, ``ip:port``, ``[v6]:port`` or ``(ip, port)``."""
    out = []
    for server in servers:
        if isinstance(server, tuple):
            host, server_port = str(server[0]), int(server[1])
        else:
            host, server_port = _split_server(str(server).strip(), port)
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"nameserver must be an IP address (port optional): {server!r}") from None
        if not 0 < server_port < 65536:
            raise ValueError(f"bad port in nameserver {server!r}")
        out.append(f"[{host}]:{server_port}" if address.version == 6 else f"{host}:{server_port}")
    if not out:
        raise ValueError("no nameservers")
    return ",".join(out)


def _split_server(text: str, port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else port
    if text.count(":") == 1:
        host, _, server_port = text.partition(":")
        return host, int(server_port)
    return text, port


# -- the channel --------------------------------------------------------------------------

class _Channel:
    """One c-ares channel driven from one asyncio loop (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        servers_csv: str,
        *,
        mode: LoopMode,
        timeout: float,
        tries: int,
        rotate: bool,
        use_tcp: bool,
        edns: bool,
        qcache_max_ttl: int,
        max_timeout: float | None,
        receive_buffer: int | None,
        dns0x20: bool = True,
        udp_max_queries: int = 4,
    ) -> None:
        self.loop = loop
        self.mode: LoopMode = mode
        self.closed = False
        self.pending: dict[int, tuple[asyncio.Future[Answer] | Outcome, Query, int]] = {}
        # (deadline, key) of every query sent; entries of answered queries stay until swept.
        self._deadlines: list[tuple[float, int]] = []
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_at = _NEVER
        # Made at the first socket c-ares opens (on the loop's thread; ``__init__`` may run in
        # a worker thread).
        self._watch: _fdwatch.LoopWatch | _fdwatch.EpollWatch | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._tv = ffi.new("struct timeval *")
        self._ready: collections.deque[tuple[asyncio.Future[Answer] | Outcome, Any]] = collections.deque()
        # Queries started while c-ares is calling back (``begin``'s lookups: the bulk runner
        # sends its next name from the callback that delivered the last one) wait here until
        # ``ares_process_fd`` returns: c-ares is not entered again from its own callback.
        self._processing = False
        self._deferred: list[tuple[int, Query, int]] = []
        self._wakeup_scheduled = False
        # One C callback per channel (a libffi closure), alive as long as the channel is.
        self._callback = ffi.callback(_CALLBACK_TYPE, self._on_result)
        self._state_handle = ffi.new_handle(self._on_sock_state) if mode == "sockets" else None

        options = ffi.new("struct ares_options *")
        mask = lib.ARES_OPT_TIMEOUTMS | lib.ARES_OPT_TRIES | _ARES_OPT_QUERY_CACHE | lib.ARES_OPT_FLAGS
        options.timeout = max(1, int(timeout * 1000))
        options.tries = max(1, tries)
        options.qcache_max_ttl = max(0, qcache_max_ttl)
        options.flags = (
            (lib.ARES_FLAG_EDNS if edns else 0) | (lib.ARES_FLAG_USEVC if use_tcp else 0)
            | (_ARES_FLAG_DNS0x20 if dns0x20 else 0)
        )
        if udp_max_queries > 0:
            # RFC 5452: a fresh socket (random source port) after this many UDP queries
            options.udp_max_queries = udp_max_queries
            mask |= _ARES_OPT_UDP_MAX_QUERIES
        if max_timeout is not None:
            options.maxtimeout = max(1, int(max_timeout * 1000))
            mask |= _ARES_OPT_MAXTIMEOUTMS
        if rotate:
            mask |= lib.ARES_OPT_ROTATE
        if receive_buffer:
            options.socket_receive_buffer_size = receive_buffer
            mask |= lib.ARES_OPT_SOCK_RCVBUF
        if mode == "sockets":
            options.sock_state_cb = lib._sock_state_cb
            options.sock_state_cb_data = self._state_handle
            mask |= lib.ARES_OPT_SOCK_STATE_CB
        else:
            options.evsys = lib.ARES_EVSYS_DEFAULT
            mask |= lib.ARES_OPT_EVENT_THREAD
        holder = ffi.new("ares_channel *")
        status = lib.ares_init_options(holder, options, mask)
        if status != _SUCCESS:
            raise pycares.AresError(status, _strerror(status))
        self._holder = holder
        self.ptr = holder[0]
        # Before any query: the servers read from the system config are never used.
        status = lib.ares_set_servers_csv(self.ptr, servers_csv.encode("ascii"))
        if status != _SUCCESS:
            self._destroy_now()
            reason = _strerror(status)
            raise ValueError(f"c-ares rejected the nameservers {servers_csv!r}: {reason}")

    # -- queries ------------------------------------------------------------------------
    def add(self, key: int, fut: asyncio.Future[Answer] | Outcome, query: Query, code: int) -> None:
        """Register a query about to be sent, with its deadline."""
        pending = self.pending
        pending[key] = (fut, query, code)
        deadline = query.deadline
        deadlines = self._deadlines
        heapq.heappush(deadlines, (deadline, key))
        if deadline < self._sweep_at:
            self._arm(deadline)
        elif len(deadlines) > 2 * len(pending) + _HEAP_SLACK:
            self._prune_deadlines()

    def _prune_deadlines(self) -> None:
        # Answered queries' entries wait for the sweep; with long deadlines they would pile up
        # until it comes. Dropped now and then: amortised O(1) per query. (Apart from ``add``:
        # the comprehension made ``pending`` a closure cell on every query.)
        pending = self.pending
        self._deadlines = [entry for entry in self._deadlines if entry[1] in pending]
        heapq.heapify(self._deadlines)

    def _arm(self, when: float) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep_at = when
        self._sweep = self.loop.call_at(when, self._expire_due)

    def _expire_due(self) -> None:
        """The sweep: fail the queries whose deadline has come, drop the entries of answered
        ones, and re-arm for the earliest deadline still pending."""
        self._sweep = None
        self._sweep_at = _NEVER
        deadlines, pending = self._deadlines, self.pending
        due = self.loop.time() + _CLOCK_RESOLUTION
        while deadlines:
            deadline, key = deadlines[0]
            if key not in pending:
                heapq.heappop(deadlines)
            elif deadline < due:
                heapq.heappop(deadlines)
                self.expire(key)
            else:
                self._arm(deadline)
                return

    def submit_soon(self, key: int, query: Query, code: int) -> None:
        """``submit``, or right after c-ares's callbacks return when called from one of them."""
        if self._processing:
            self._deferred.append((key, query, code))
        else:
            self.submit(key, query, code)

    def _submit_deferred(self) -> None:
        while self._deferred and not self.closed:
            batch, self._deferred = self._deferred, []
            pending = self.pending
            for key, query, code in batch:
                if key in pending:  # (not expired nor closed meanwhile)
                    self.submit(key, query, code)

    def submit(self, key: int, query: Query, code: int) -> None:
        status = lib.ares_query_dnsrec(
            self.ptr, query.name.encode("ascii"), _CLASS_IN, code,
            self._callback, ffi.cast("void *", key), _NULL,
        )
        # On failure c-ares has already called back with the same status.
        if status == _SUCCESS and self.mode == "sockets" and self._tick is None:
            self._tick = self.loop.call_later(0.05, self._on_tick)

    def _on_result(self, arg: Any, status: int, timeouts: int, dnsrec: Any) -> None:
        entry = self.pending.pop(int(ffi.cast("uintptr_t", arg)), None)
        if entry is None:
            return  # expired, cancelled, or the backend closed: nobody waits for it
        fut, query, code = entry
        outcome = _outcome(status, dnsrec, query, code)
        if self.mode == "sockets":
            if not fut.done():
                if isinstance(outcome, BaseException):
                    fut.set_exception(outcome)
                else:
                    fut.set_result(outcome)
            return
        # c-ares's event thread: hand over to the loop, one wake-up per batch.
        self._ready.append((fut, outcome))
        if not self._wakeup_scheduled:
            self._wakeup_scheduled = True
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._wakeup_scheduled = False
        ready = self._ready
        while ready:
            fut, outcome = ready.popleft()
            if fut.done():
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

    def expire(self, key: int) -> None:
        entry = self.pending.pop(key, None)
        if entry is not None and not entry[0].done():
            query = entry[1]
            entry[0].set_exception(ResolveTimeout(name=query.name, rdtype=query.rdtype, source=SOURCE))

    # -- socket-callback mode -----------------------------------------------------------
    def _on_sock_state(self, fd: int, readable: bool, writable: bool) -> None:
        if self.closed and (readable or writable):
            return
        try:
            watch = self._watch
            if watch is None:
                if not (readable or writable):
                    return
                watch = self._watch = _fdwatch.watcher(self.loop, self._process, _SOCKET_BAD)
            watch.set(fd, readable, writable)
        except RuntimeError:  # loop closed under us (finalisation)
            pass

    @property
    def readers(self) -> set[int]:
        """The sockets watched for replies now."""
        return set() if self._watch is None else self._watch.readers

    def _process(self, read_fd: int, write_fd: int) -> None:
        """``ares_process_fd``, then the lookups begun from its callbacks (``submit_soon``)."""
        self._processing = True
        try:
            lib.ares_process_fd(self.ptr, read_fd, write_fd)
        finally:
            self._processing = False
        if self._deferred:
            self._submit_deferred()

    def _on_tick(self) -> None:
        # c-ares's retransmissions and its own timeouts: process them when c-ares says so.
        self._tick = None
        if self.closed:
            return
        self._process(_SOCKET_BAD, _SOCKET_BAD)
        if lib.ares_timeout(self.ptr, _NULL, self._tv) == _NULL:
            return  # nothing in flight
        delay = self._tv.tv_sec + self._tv.tv_usec / 1e6
        self._tick = self.loop.call_later(min(max(delay, 0.002), 0.25), self._on_tick)

    # -- closing ------------------------------------------------------------------------
    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        # Every query still in c-ares calls back now with ARES_ECANCELLED -> ResolverClosed.
        lib.ares_cancel(self.ptr)
        if self.mode == "thread":
            # ares_destroy joins c-ares's event thread: not on the loop.
            await asyncio.to_thread(self._destroy_now)
            self._drain()
        else:
            if self._tick is not None:
                self._tick.cancel()
                self._tick = None
            self._destroy_now()
            self._unwatch()
        self._stop_sweep()
        for fut, query, _code in list(self.pending.values()):
            if not fut.done():
                fut.set_exception(
                    ResolverClosed("the c-ares backend was closed", name=query.name, source=SOURCE)
                )
        self.pending.clear()

    def retire(self) -> None:
        """Give up a channel whose loop is gone (closed, or no longer running): nothing of
        it may run again. Blocking in thread mode (``ares_destroy`` joins c-ares's thread)."""
        self.closed = True
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._stop_sweep()
        for fut, _query, _code in list(self.pending.values()):
            if isinstance(fut, asyncio.Future):  # (a ``begin`` lookup's outcome belonged to that loop too)
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                    fut.cancel()
        self.pending.clear()
        self._destroy_now()
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _stop_sweep(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._sweep_at = _NEVER
        self._deadlines.clear()

    def _destroy_now(self) -> None:
        ptr, self.ptr = self.ptr, _NULL
        if ptr != _NULL:
            lib.ares_cancel(ptr)
            lib.ares_queue_wait_empty(ptr, -1)
            lib.ares_destroy(ptr)


def _destroy_made(made: ThreadFuture[_Channel]) -> None:
    """Destroy a channel that was made for a loop that went away while it was being made."""
    if not made.cancelled() and made.exception() is None:
        made.result().retire()


# -- the backend --------------------------------------------------------------------------

_keys = itertools.count(1)


class CaresBackend(Backend):
    """Queries sent with c-ares to the configured nameservers (see the module docstring).

    :param nameservers: IP addresses, each optionally with a port (``"127.0.0.1:5353"``,
        ``"[::1]:5353"``, or ``("127.0.0.1", 5353)``); ``None`` reads the ``nameserver``
        lines of ``resolv_conf`` (in a worker thread, at first use).
    :param port: the port of nameservers given without one.
    :param timeout: c-ares's first-try timeout per server, in seconds (c-ares adapts it to
        the measured round-trip time, and doubles it on later tries). The resolver's
        per-query deadline always wins. Default: resolv.conf's ``timeout`` when the
        nameservers come from it, else 1 s.
    :param tries: how many times c-ares tries each server (default: resolv.conf's
        ``attempts``, else 3).
    :param rotate: spread queries over the nameservers instead of using them in order
        (default: resolv.conf's ``rotate``, else off).
    :param search: domains tried for relative names (typed without the trailing dot), with
        glibc's rules; default resolv.conf's ``search`` when the nameservers come from it,
        else none.
    :param ndots: a relative name with at least this many dots is tried as it is first
        (default resolv.conf's, else 1).
    :param use_tcp: send every query over TCP (c-ares otherwise retries over TCP only when
        a UDP reply is truncated); default resolv.conf's ``use-vc`` when the nameservers come
        from it, else off.
    :param edns: add an EDNS0 OPT record (1232-byte UDP payload), as c-ares does by default.
    :param loop_mode: ``"sockets"`` (default: c-ares's sockets watched by the asyncio loop)
        or ``"thread"`` (c-ares's own event thread).
    :param qcache_max_ttl: c-ares's internal query cache; 0 (default) turns it off so the
        resolver's cache is the only one.
    :param max_timeout: cap, in seconds, on c-ares's per-try timeout as it doubles.
    :param dns0x20: randomise the case of every query name and accept only replies that
        echo it exactly (c-ares's ``ARES_FLAG_DNS0x20``; default on): about one more bit
        of forgery resistance per letter of the name (RFC 5452, draft-vixie-dnsext-dns0x20).
    :param udp_max_queries: c-ares opens a new UDP socket (a new random source port)
        after this many queries on one (default 4; 0 = unlimited, c-ares's own default,
        which kept one port for the channel's life). 1 gives every query its own port, as
        the iterative backend does, at half the throughput, and with a thousand queries in
        flight at once it made lookups through unbound time out in our tests; 4 keeps the
        throughput and, with 0x20, let no forgery through in ``tests/test_spoofing.py``.
    :param receive_buffer: ``SO_RCVBUF`` of c-ares's sockets in bytes (the kernel caps it at
        ``net.core.rmem_max``), or None for the kernel's default. ``"auto"`` (default): 1 MiB
        when a socket may carry more than 64 queries (``udp_max_queries`` 0 or above 64),
        else the kernel's default. With one socket for every query to a server, hundreds of
        replies in flight arrive in bursts that the usual 208 KiB default drops, and each
        drop costs a c-ares retry timeout; a socket that carries at most a few dozen queries
        never holds more replies than the default fits, and the large buffer cost 3-5 µs of
        CPU per lookup there (``udp_max_queries=4``, through the ``Resolver``, NSD on loopback).
    """

    name = SOURCE
    supported_types = frozenset(_conv.TYPE_CODES)
    honours_deadline = True  # the channel's deadline sweep, see the module docstring

    def __init__(
        self,
        nameservers: Sequence[str | tuple[str, int]] | None = None,
        port: int = 53,
        *,
        timeout: float | None = None,
        tries: int | None = None,
        rotate: bool | None = None,
        search: Sequence[str] | None = None,
        ndots: int | None = None,
        use_tcp: bool | None = None,
        edns: bool = True,
        loop_mode: LoopMode = "sockets",
        qcache_max_ttl: int = 0,
        max_timeout: float | None = None,
        receive_buffer: int | Literal["auto"] | None = "auto",
        resolv_conf: str | os.PathLike[str] = "/etc/resolv.conf",
        dns0x20: bool = True,
        udp_max_queries: int = 4,
    ) -> None:
        if loop_mode not in ("sockets", "thread"):
            raise ValueError(f"loop_mode must be 'sockets' or 'thread', not {loop_mode!r}")
        if (timeout is not None and not timeout > 0) or (tries is not None and tries < 1):
            raise ValueError("timeout must be > 0 and tries >= 1")
        if receive_buffer == "auto":
            small = 0 < udp_max_queries <= _SMALL_SOCKET_QUERIES
            receive_buffer = None if small else _BIG_RECEIVE_BUFFER
        elif receive_buffer is not None and (isinstance(receive_buffer, bool) or not isinstance(receive_buffer, int)
                                             or receive_buffer < 0):
            raise ValueError(f"receive_buffer must be 'auto', None or a byte count, not {receive_buffer!r}")
        if ndots is not None and not 0 <= ndots <= resolvconf.MAX_NDOTS:
            raise ValueError(f"ndots must be between 0 and {resolvconf.MAX_NDOTS}")
        # resolv.conf fills what is not given when the nameservers come from it; given
        # nameservers mean c-ares's defaults and no search list.
        self._from_resolv_conf = nameservers is None
        self._search = None if search is None else tuple(normalize_name(d) for d in search)
        self._ndots = ndots
        self._no_tld_query = False
        self._servers_csv = _server_csv(nameservers, port) if nameservers is not None else None
        self._port = port
        self._resolv_conf = os.fspath(resolv_conf)
        self._options: dict[str, Any] = dict(
            mode=loop_mode, timeout=timeout, tries=tries, rotate=rotate, use_tcp=use_tcp,
            edns=edns, qcache_max_ttl=qcache_max_ttl, max_timeout=max_timeout,
            receive_buffer=receive_buffer, dns0x20=dns0x20, udp_max_queries=max(0, udp_max_queries),
        )
        self._channel: _Channel | None = None
        self._starting: asyncio.Task[_Channel] | None = None
        self._closed = False
        self._retire_lock = threading.Lock()

    @property
    def loop_mode(self) -> LoopMode:
        """How c-ares is driven: ``"sockets"`` (its sockets watched by the loop) or ``"thread"``."""
        return self._options["mode"]  # type: ignore[no-any-return]  # always a LoopMode value

    @property
    def nameservers(self) -> list[str] | None:
        """The servers as given to c-ares (``ip:port``), or None before the first query
        when they come from resolv.conf."""
        return self._servers_csv.split(",") if self._servers_csv else None

    async def _start(self) -> _Channel:
        """The channel of the running loop, made (in a worker thread) at first use."""
        if self._closed:
            raise ResolverClosed("the c-ares backend is closed", source=SOURCE)
        loop = asyncio.get_running_loop()
        old = self._channel
        if old is not None and old.loop is not loop:
            if old.loop.is_running() and not old.loop.is_closed():
                raise ResolveError(
                    "this CaresBackend is in use by another running event loop; "
                    "make one backend (or Resolver) per loop", source=SOURCE,
                )
            self._channel = None
            await asyncio.to_thread(self._retire, old)
        task = self._starting
        if task is None or task.get_loop() is not loop:
            # a task of its own: a caller cancelled by its deadline does not cancel it
            task = self._starting = loop.create_task(self._create(loop))
        return await asyncio.shield(task)

    def _retire(self, channel: _Channel) -> None:
        with self._retire_lock:
            channel.retire()

    async def _create(self, loop: asyncio.AbstractEventLoop) -> _Channel:
        made: ThreadFuture[_Channel] = ThreadFuture()

        def make() -> None:
            if made.set_running_or_notify_cancel():
                try:
                    made.set_result(self._make_channel(loop))
                except BaseException as exc:  # noqa: BLE001 - re-raised in the loop that awaits the channel
                    made.set_exception(exc)

        threading.Thread(target=make, name="asyncresolve-cares-init", daemon=True).start()
        try:
            channel = await asyncio.wrap_future(made)
        except asyncio.CancelledError:
            # the loop is going away (asyncio.run's end): whatever the thread makes dies
            made.add_done_callback(_destroy_made)
            raise
        finally:
            if self._starting is not None and self._starting.get_loop() is loop:
                self._starting = None
        if self._closed:  # aclose() ran while the channel was being made
            await channel.aclose()
            raise ResolverClosed("the c-ares backend was closed", source=SOURCE)
        self._channel = channel
        return channel

    def _make_channel(self, loop: asyncio.AbstractEventLoop) -> _Channel:
        if self._from_resolv_conf:
            conf = resolvconf.read_resolv_conf(self._resolv_conf)
            if self._servers_csv is None:
                self._servers_csv = _server_csv(conf.nameservers, self._port)
            self._no_tld_query = conf.no_tld_query
            for key, value in (("timeout", conf.timeout), ("tries", conf.attempts), ("rotate", conf.rotate),
                               ("use_tcp", conf.use_vc)):
                if self._options[key] is None:
                    self._options[key] = value
            if self._search is None:
                self._search = conf.search
            if self._ndots is None:
                self._ndots = conf.ndots
        else:
            for key, value in (("timeout", 1.0), ("tries", 3), ("rotate", False), ("use_tcp", False)):
                if self._options[key] is None:
                    self._options[key] = value
        assert self._servers_csv is not None
        try:
            return _Channel(loop, self._servers_csv, **self._options)
        except pycares.AresError:
            if self._options["mode"] != "thread":
                raise
            # c-ares's event thread needs an inotify watch for resolv.conf; fall back.
            self._options["mode"] = "sockets"
            return _Channel(loop, self._servers_csv, **self._options)

    @property
    def search(self) -> tuple[str, ...] | None:
        """The search list applied to relative names (None before the first query when it
        comes from resolv.conf)."""
        return self._search

    @property
    def ndots(self) -> int | None:
        """Relative names with at least this many dots are tried as given first (resolv.conf's
        ``ndots``; None before the first query when it comes from resolv.conf)."""
        return self._ndots

    async def resolve(self, query: Query) -> Answer:
        """Send ``query`` with c-ares; raise ``NotMine`` for a type c-ares does not decode.

        A relative query goes through the search list (``resolvconf.search``); the answer
        then names the absolute name that answered."""
        code = _conv.TYPE_CODES.get(query.rdtype)
        if code is None:
            raise NotMine(query.rdtype)
        channel = self._channel
        if channel is None or channel.loop is not asyncio.get_running_loop():
            channel = await self._start()
        if query.relative and self._search:
            return await self._search_list(channel, query, code)
        return await self._ask(channel, query, code)

    def _search_list(self, channel: _Channel, query: Query, code: int) -> Coroutine[Any, Any, Answer]:
        """``query`` through the search list. A method of its own: a lambda inside ``resolve``
        made its four variables closure cells on every call, each one more object for the
        garbage collector to walk while the query is out."""
        return resolvconf.search(
            query.name, self._search or (), self._ndots if self._ndots is not None else 1,
            lambda name: self._ask(channel, replace(query, name=name, relative=False), code),
            no_tld_query=self._no_tld_query,
        )

    async def _ask(self, channel: _Channel, query: Query, code: int) -> Answer:
        if channel.closed:
            raise ResolverClosed("the c-ares backend is closed", name=query.name, source=SOURCE)
        loop = channel.loop
        fut: asyncio.Future[Answer] = loop.create_future()
        key = next(_keys)
        channel.add(key, fut, query, code)
        channel.submit(key, query, code)
        try:
            return await fut
        except asyncio.CancelledError:
            channel.pending.pop(key, None)  # its deadline entry goes at the next sweep
            raise

    def begin(self, query: Query, outcome: Outcome, loop: asyncio.AbstractEventLoop) -> bool:
        """Send ``query`` now and hand its outcome to ``outcome`` (``asyncresolve.bulk``'s
        express lane): the lookup without a coroutine or a future of its own.

        ``outcome`` gets the ``Answer`` (``set_result``) or the ``ResolveError``
        (``set_exception``) that ``resolve`` would have returned or raised, from a callback
        or a timer of the loop. False, with nothing sent, when the lookup cannot start this
        way (closed, no channel on this loop yet, a type c-ares does not decode, a relative
        name with a search list): ``resolve`` is the way then.
        """
        code = _conv.TYPE_CODES.get(query.rdtype)
        channel = self._channel
        if (code is None or channel is None or channel.loop is not loop or channel.closed or self._closed
                or (query.relative and self._search)):
            return False
        key = next(_keys)
        channel.add(key, outcome, query, code)
        channel.submit_soon(key, query, code)
        return True

    async def aclose(self) -> None:
        """Cancel what is in flight (``ResolverClosed``) and destroy the channel; a channel
        still being made is destroyed as soon as it exists, before this returns."""
        self._closed = True
        task = self._starting
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.wait({task})  # its outcome is the callers' business, not ours
        channel, self._channel = self._channel, None
        if channel is None:
            return
        if channel.loop is asyncio.get_running_loop():
            await channel.aclose()
        else:
            await asyncio.to_thread(self._retire, channel)

    def __repr__(self) -> str:
        servers = self._servers_csv or "resolv.conf"
        return f"<CaresBackend {servers} mode={self._options['mode']}>"

