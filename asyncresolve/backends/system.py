"""The OS resolver: ``getaddrinfo`` in a bounded pool of worker threads.

It sees everything the OS sees (nsswitch, mDNS, systemd-resolved, VPN split DNS), but the
OS gives no TTL, so answers carry ``ttl`` (default 30 s, configurable) with
``ttl_known=False``, and it cannot tell
every failure apart: ``EAI_NONAME`` is NXDOMAIN, ``EAI_NODATA``/``EAI_ADDRFAMILY`` NODATA,
``EAI_AGAIN`` a temporary failure (``ServFail`` with ``rcode=None``, which falls back).
At most ``max_threads`` lookups run at once; the others wait for a slot, so a burst of
thousands of names never means thousands of threads.

In the default chain it is built with ``nsswitch=``: it then reads nsswitch.conf's
``hosts:`` line once (in a worker thread) and steps aside when the OS would only consult
the hosts file and DNS, which the rest of the chain does with real TTLs.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import anyio

from ..answer import Answer
from ..errors import NetworkError, NoAnswer, NXDomain, ResolveError, ServFail
from ..records import AAAARecord, ARecord, Record
from .base import Backend, NotMine, Query
from .nsswitch import files_and_dns_only, read_hosts_sources

_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
_NODATA_CODES = {getattr(socket, n) for n in ("EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, n)}


class SystemBackend(Backend):
    """A and AAAA through the operating system's ``getaddrinfo``.

    :param max_threads: bound on concurrent ``getaddrinfo`` calls (and so on threads).
    :param ttl: lifetime of its answers (``answer.ttl_known`` is False: the OS reports no TTL).
    :param nsswitch: an nsswitch.conf path: read at first use; if its ``hosts:`` line is
        ``files dns``, the backend answers nothing (``NotMine``), so that the hosts file
        and c-ares behind it answer with real TTLs. ``None``: always answer.
    """

    name = "system"
    supported_types = frozenset(_FAMILIES)

    def __init__(self, max_threads: int = 32, *, ttl: int = 30,
                 nsswitch: str | os.PathLike[str] | None = None) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self.max_threads = max_threads
        self.ttl = ttl
        self.nsswitch = None if nsswitch is None else os.fspath(nsswitch)
        #: whether the backend answers: None until nsswitch.conf was read.
        self.engaged: bool | None = True if nsswitch is None else None
        self._deciding: asyncio.Task[bool] | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The bound on worker threads running ``getaddrinfo`` (``max_threads``)."""
        if self._limiter is None:  # created lazily: it must belong to the running loop
            self._limiter = anyio.CapacityLimiter(self.max_threads)
        return self._limiter

    async def decide(self) -> bool:
        """Read nsswitch.conf (once, in a thread): does this backend answer at all?"""
        if self.engaged is not None:
            return self.engaged
        loop = asyncio.get_running_loop()
        deciding = self._deciding
        if deciding is None or deciding.get_loop() is not loop:
            # a task of its own: a waiter cancelled by its deadline does not cancel the read
            deciding = self._deciding = loop.create_task(self._read_nsswitch())
        return await asyncio.shield(deciding)

    async def _read_nsswitch(self) -> bool:
        path = self.nsswitch
        assert path is not None  # decided at construction otherwise
        sources = await anyio.to_thread.run_sync(read_hosts_sources, path)
        self.engaged = not files_and_dns_only(sources)
        return self.engaged

    async def aclose(self) -> None:
        """Wait for the nsswitch.conf read if one is in flight."""
        task = self._deciding
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(task)

    async def resolve(self, query: Query) -> Answer:
        if self.engaged is False or (self.engaged is None and not await self.decide()):
            raise NotMine  # the OS would ask only the hosts file and DNS: the chain does
        family = _FAMILIES[query.rdtype]
        # A relative name goes without its dot, so glibc searches it and its files source
        # matches it ("localhost." is not in /etc/hosts for glibc); an absolute one keeps it.
        host = query.name[:-1] if query.relative else query.name
        try:
            infos = await anyio.to_thread.run_sync(
                _getaddrinfo, host, family, limiter=self.limiter, abandon_on_cancel=True
            )
        except socket.gaierror as exc:
            raise _error_for(exc, query, self.name, self.ttl) from None
        except OSError as exc:
            raise NetworkError(str(exc), name=query.name, rdtype=query.rdtype, source=self.name) from None
        addresses: list[str] = []
        canonical = query.name
        for _family, _type, _proto, canonname, sockaddr in infos:
            if canonname:
                canonical = canonname.lower().rstrip(".") + "."
            address = sockaddr[0].split("%", 1)[0]
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise NoAnswer(name=query.name, rdtype=query.rdtype, source=self.name)
        cls = ARecord if family == socket.AF_INET else AAAARecord
        records: list[Record] = [cls(canonical, self.ttl, a) for a in addresses]
        return Answer(query.name, query.rdtype, records, self.name, canonical_name=canonical,
                      ttl_known=False)


def _getaddrinfo(host: str, family: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, None, family, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)


def _error_for(exc: socket.gaierror, query: Query, source: str, ttl: int) -> ResolveError:
    code = exc.errno
    kwargs: dict[str, Any] = {"name": query.name, "rdtype": query.rdtype, "source": source}
    if code == socket.EAI_NONAME:
        return NXDomain(str(exc), **kwargs)
    if code in _NODATA_CODES:
        return NoAnswer(str(exc), **kwargs)
    if code == socket.EAI_AGAIN:
        return ServFail(str(exc), rcode=None, **kwargs)
    if code == socket.EAI_FAIL:
        return ServFail(str(exc), **kwargs)
    return ResolveError(f"getaddrinfo failed: {exc}", **kwargs)
