"""Every client the benchmark compares, opened fresh (cold) for each pass.

A contender is a name and an async context manager factory: ``open(server)`` yields a
``lookup(name) -> address`` coroutine function for A records. ``server`` is ``(ip, port)``
of the benchmark's own DNS server; contenders that go through the OS (``getaddrinfo``,
aiohttp's resolvers, asyncresolve's system backend and default chain) find the same server
in ``/etc/resolv.conf``, which the harness replaces in a private mount namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pycares

from asyncresolve.backends.base import Query
from asyncresolve.backends.cares import CaresBackend
from asyncresolve.backends.native import NativeBackend
from asyncresolve.backends.system import SystemBackend
from asyncresolve.cache import TTLCache
from asyncresolve.resolver import Resolver

from .harness import Lookup

Server = tuple[str, int]
# Same SO_RCVBUF as CaresBackend's default: with the kernel's 208 KiB, replies to hundreds of
# queries in flight overflow the one UDP socket and a run measures c-ares's retry timer.
RCVBUF = 1 << 20
TIMEOUT = 10.0


@dataclass(frozen=True)
class Contender:
    label: str
    open: Callable[[Server], contextlib.AbstractAsyncContextManager[Lookup]]
    via_os: bool = False  # resolves through /etc/resolv.conf (threads), not an explicit server
    note: str = ""


class RawPycares:
    """pycares 5's public API driven the way aiodns 4 drives it, with c-ares's sockets on the loop.

    ``mode="sockets"`` (``sock_state_cb``: the loop watches c-ares's sockets) was the faster
    of pycares 5's two loop integrations in every run here; ``mode="thread"`` uses c-ares's
    own event thread and ``call_soon_threadsafe`` for each result.
    """

    def __init__(self, server: Server, mode: str = "sockets") -> None:
        self.loop = asyncio.get_running_loop()
        self.mode = mode
        self.readers: set[int] = set()
        self.writers: set[int] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        address = f"{server[0]}:{server[1]}"
        options: dict[str, Any] = {"servers": [address], "timeout": 1.0, "tries": 3,
                                   "socket_receive_buffer_size": RCVBUF}
        if mode == "sockets":
            options["sock_state_cb"] = self._sock_state
        self.channel = pycares.Channel(**options)

    def _sock_state(self, fd: int, readable: bool, writable: bool) -> None:
        if self.closed:
            return
        if readable and fd not in self.readers:
            self.loop.add_reader(fd, self.channel.process_fd, fd, pycares.ARES_SOCKET_BAD)
            self.readers.add(fd)
        elif not readable and fd in self.readers:
            self.loop.remove_reader(fd)
            self.readers.discard(fd)
        if writable and fd not in self.writers:
            self.loop.add_writer(fd, self.channel.process_fd, pycares.ARES_SOCKET_BAD, fd)
            self.writers.add(fd)
        elif not writable and fd in self.writers:
            self.loop.remove_writer(fd)
            self.writers.discard(fd)
        if (self.readers or self.writers) and self.timer is None:
            self.timer = self.loop.call_later(1.0, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.closed:
            return
        self.channel.process_fd(pycares.ARES_SOCKET_BAD, pycares.ARES_SOCKET_BAD)
        if (self.readers or self.writers) and self.timer is None:
            self.timer = self.loop.call_later(1.0, self._tick)

    def query(self, name: str) -> asyncio.Future[pycares.DNSResult]:
        fut: asyncio.Future[pycares.DNSResult] = self.loop.create_future()

        def done(result: pycares.DNSResult, error: int | None) -> None:
            if fut.done():
                return
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(pycares.AresError(error))

        if self.mode == "sockets":
            self.channel.query(name, pycares.QUERY_TYPE_A, callback=done)
        else:
            self.channel.query(name, pycares.QUERY_TYPE_A,
                               callback=lambda r, e: self.loop.call_soon_threadsafe(done, r, e))
        return fut

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        for fd in self.readers:
            self.loop.remove_reader(fd)
        for fd in self.writers:
            self.loop.remove_writer(fd)
        self.channel.close()


def _first_a(result: pycares.DNSResult) -> str | None:
    for record in result.answer:
        if record.type == pycares.QUERY_TYPE_A:
            return record.data.addr  # type: ignore[no-any-return]
    return None


@contextlib.asynccontextmanager
async def raw_pycares(server: Server) -> AsyncIterator[Lookup]:
    raw = RawPycares(server)
    try:
        async def lookup(name: str) -> str | None:
            return _first_a(await raw.query(name))

        yield lookup
    finally:
        raw.close()


@contextlib.asynccontextmanager
async def resolver_with(backends: list[Any] | None, cache: bool = True) -> AsyncIterator[Lookup]:
    resolver = Resolver(backends, cache=TTLCache() if cache else None, timeout=TIMEOUT)
    try:
        async def lookup(name: str) -> str | None:
            answer = await resolver.resolve(name, "A")
            return answer.records[0].address  # type: ignore[attr-defined,no-any-return]

        yield lookup
    finally:
        await resolver.aclose()


def resolver_cares(server: Server) -> contextlib.AbstractAsyncContextManager[Lookup]:
    return resolver_with([CaresBackend([f"{server[0]}:{server[1]}"])])


def resolver_cares_raw_settings(server: Server) -> contextlib.AbstractAsyncContextManager[Lookup]:
    """``Resolver`` + ``CaresBackend`` with raw pycares's c-ares settings: one UDP socket for the
    channel's life and no 0x20, where the backend's defaults open a new random-port socket every
    4 queries and randomise the case (RFC 5452; see README "Forgery resistance")."""
    return resolver_with([CaresBackend([f"{server[0]}:{server[1]}"], dns0x20=False, udp_max_queries=0)])


def resolver_native(server: Server) -> contextlib.AbstractAsyncContextManager[Lookup]:
    return resolver_with([NativeBackend([server])])


def resolver_system(server: Server) -> contextlib.AbstractAsyncContextManager[Lookup]:
    return resolver_with([SystemBackend()])


def resolver_default(server: Server) -> contextlib.AbstractAsyncContextManager[Lookup]:
    return resolver_with(None)


@contextlib.asynccontextmanager
async def backend_alone(backend: Any) -> AsyncIterator[Lookup]:
    """A backend asked directly: no cache, no coalescer, no chain (the miss-path split)."""
    loop = asyncio.get_running_loop()
    try:
        async def lookup(name: str) -> str | None:
            answer = await backend.resolve(Query(name, "A", loop.time() + TIMEOUT))
            return answer.records[0].address  # type: ignore[no-any-return]

        yield lookup
    finally:
        await backend.aclose()


def cares_backend_alone(server: Server) -> contextlib.AbstractAsyncContextManager[Lookup]:
    return backend_alone(CaresBackend([f"{server[0]}:{server[1]}"]))


def native_backend_alone(server: Server) -> contextlib.AbstractAsyncContextManager[Lookup]:
    return backend_alone(NativeBackend([server]))


@contextlib.asynccontextmanager
async def aiodns_query_dns(server: Server) -> AsyncIterator[Lookup]:
    import aiodns

    resolver = aiodns.DNSResolver(nameservers=[f"{server[0]}:{server[1]}"], timeout=1.0, tries=3,
                                  socket_receive_buffer_size=RCVBUF)
    try:
        async def lookup(name: str) -> str | None:
            return _first_a(await resolver.query_dns(name, "A"))

        yield lookup
    finally:
        await resolver.close()


@contextlib.asynccontextmanager
async def dnspython_stub(server: Server) -> AsyncIterator[Lookup]:
    import dns.asyncresolver

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [server[0]]
    resolver.port = server[1]
    resolver.lifetime = TIMEOUT
    resolver.timeout = 2.0
    resolver.cache = None

    async def lookup(name: str) -> str | None:
        answer = await resolver.resolve(name, "A")
        return answer[0].address  # type: ignore[no-any-return]

    yield lookup


@contextlib.asynccontextmanager
async def getaddrinfo_threads(server: Server) -> AsyncIterator[Lookup]:
    loop = asyncio.get_running_loop()

    async def lookup(name: str) -> str | None:
        infos = await loop.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
        return infos[0][4][0]  # type: ignore[no-any-return]

    yield lookup


@contextlib.asynccontextmanager
async def aiohttp_resolver(kind: str) -> AsyncIterator[Lookup]:
    import aiohttp

    resolver = aiohttp.ThreadedResolver() if kind == "threaded" else aiohttp.AsyncResolver()
    try:
        async def lookup(name: str) -> str | None:
            hosts = await resolver.resolve(name, 0, family=socket.AF_INET)
            return hosts[0]["host"]  # type: ignore[no-any-return]

        yield lookup
    finally:
        await resolver.close()


# The order is the table's; the baseline first.
COLD_CONTENDERS: tuple[Contender, ...] = (
    Contender("raw pycares", raw_pycares, note="pycares 5, sock_state_cb on the loop (aiodns's way)"),
    Contender("Resolver+cares", resolver_cares),
    Contender("Resolver+cares, raw's settings", resolver_cares_raw_settings,
              note="one socket, no 0x20: c-ares as raw pycares runs it"),
    Contender("CaresBackend alone", cares_backend_alone, note="no cache, no coalescer, no chain"),
    Contender("Resolver+native", resolver_native, note="NativeBackend: pure-Python stub (wire codec, socket pool)"),
    Contender("NativeBackend alone", native_backend_alone, note="no cache, no coalescer, no chain"),
    Contender("aiodns query_dns", aiodns_query_dns),
    Contender("dnspython async", dnspython_stub, note="dns.asyncresolver, cache off"),
    Contender("Resolver default chain", resolver_default, via_os=True, note="hosts, then getaddrinfo threads"),
    Contender("Resolver+system", resolver_system, via_os=True, note="SystemBackend: getaddrinfo threads"),
    Contender("getaddrinfo threads", getaddrinfo_threads, via_os=True, note="loop.getaddrinfo, default executor"),
    Contender("aiohttp Threaded", lambda server: aiohttp_resolver("threaded"), via_os=True),
    Contender("aiohttp Async", lambda server: aiohttp_resolver("async"), via_os=True, note="aiodns, resolv.conf"),
)
BASELINE = "raw pycares"


def by_label(labels: list[str] | None) -> tuple[Contender, ...]:
    if not labels:
        return COLD_CONTENDERS
    wanted = {label.lower() for label in labels}
    chosen = tuple(c for c in COLD_CONTENDERS if c.label.lower() in wanted or c.label == BASELINE)
    unknown = wanted - {c.label.lower() for c in COLD_CONTENDERS}
    if unknown:
        raise SystemExit(f"unknown contender(s) {sorted(unknown)}; known: {[c.label for c in COLD_CONTENDERS]}")
    return chosen
