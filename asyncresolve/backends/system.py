"""The OS resolver: ``getaddrinfo`` in a bounded pool of worker threads.

It sees everything the OS sees (nsswitch, mDNS, systemd-resolved, VPN split DNS), but the
OS gives no TTL, so answers carry ``ttl`` (default 30 s, configurable), and it cannot tell
every failure apart: ``EAI_NONAME`` is NXDOMAIN, ``EAI_NODATA``/``EAI_ADDRFAMILY`` NODATA,
``EAI_AGAIN`` a temporary failure (``ServFail`` with ``rcode=None``, which falls back).
At most ``max_threads`` lookups run at once; the others wait for a slot, so a burst of
thousands of names never means thousands of threads.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio

from ..answer import Answer
from ..errors import NetworkError, NoAnswer, NXDomain, ResolveError, ServFail
from ..records import AAAARecord, ARecord, Record
from .base import Backend, Query

_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
_NODATA_CODES = {getattr(socket, n) for n in ("EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, n)}


class SystemBackend(Backend):
    """A and AAAA through the operating system's ``getaddrinfo``.

    :param max_threads: bound on concurrent ``getaddrinfo`` calls (and so on threads).
    :param ttl: TTL of its answers: the OS reports none.
    """

    name = "system"
    supported_types = frozenset(_FAMILIES)

    def __init__(self, max_threads: int = 32, *, ttl: int = 30) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self.max_threads = max_threads
        self.ttl = ttl
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The bound on worker threads running ``getaddrinfo`` (``max_threads``)."""
        if self._limiter is None:  # created lazily: it must belong to the running loop
            self._limiter = anyio.CapacityLimiter(self.max_threads)
        return self._limiter

    async def resolve(self, query: Query) -> Answer:
        family = _FAMILIES[query.rdtype]
        # No trailing dot: glibc's files source does not match "localhost." in /etc/hosts.
        host = query.name[:-1] or "."
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
        return Answer(query.name, query.rdtype, records, self.name, canonical_name=canonical)


def _getaddrinfo(host: str, family: int) -> list[tuple]:  # type: ignore[type-arg]
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
