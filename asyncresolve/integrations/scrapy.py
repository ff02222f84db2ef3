"""asyncresolve as Scrapy's resolver (Twisted's ``IHostnameResolver``), under the asyncio reactor.

In ``settings.py``::

    TWISTED_DNS_RESOLVER = "asyncresolve.integrations.scrapy.AsyncResolveResolver"
    # optional:
    ASYNCRESOLVE_RESOLVER = "myproject.dns.make_resolver"     # a Resolver, or a callable returning one
    ASYNCRESOLVE_POLICY = AddressPolicy()                      # or an import path / callable
    DNS_TIMEOUT = 10                                           # seconds per lookup

Scrapy's ``CachingThreadedResolver`` asks ``getaddrinfo`` for IPv4 only, in threads, and
caches every answer forever (no TTL) and no failure. This resolver returns IPv6 and IPv4
addresses in connect order, keeps real TTLs and caches NXDOMAIN/NODATA for their RFC 2308
TTL (the ``Resolver``'s cache, sized by ``DNSCACHE_SIZE``), and bounds each lookup by
``DNS_TIMEOUT``. A failed lookup resolves to no address, which Twisted reports as
``DNSLookupError`` and Scrapy as ``CannotResolveHostError``, as it does for a
``socket.gaierror`` from the OS.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver, IHostResolution
from zope.interface import implementer

from asyncresolve import ResolveError, Resolver, TTLCache
from asyncresolve.backends import CaresBackend
from asyncresolve.policy import AddressPolicy

from ._connect import connect_addresses, os_error_for

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)


class ResolutionFailed(DNSLookupError, socket.gaierror):
    """A lookup failed: both Twisted's ``DNSLookupError`` and a ``socket.gaierror``, caused
    by the ``socket.gaierror`` (or ``PermissionError`` for a policy refusal) that in turn
    is caused by the asyncresolve error."""


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name
        self.future: asyncio.Future[list[str]] | None = None

    def cancel(self) -> None:
        if self.future is not None:
            self.future.cancel()


def _load(value: Any) -> Any:
    """A setting that is an object, an import path to one, or a callable building one."""
    if isinstance(value, str):
        from scrapy.utils.misc import load_object

        value = load_object(value)
    if callable(value) and not isinstance(value, (Resolver, AddressPolicy)):
        value = value()
    return value


@implementer(IHostnameResolver)
class AsyncResolveResolver:
    """Twisted's ``IHostnameResolver`` on an asyncresolve ``Resolver``.

    :param reactor: Twisted's ``AsyncioSelectorReactor`` (Scrapy's default reactor).
    :param resolver: the ``Resolver``; default ``Resolver()`` (closed at reactor shutdown).
    :param policy: an ``AddressPolicy``; refused addresses are not returned (a name with
        none left fails, and the refusal is logged as a warning).
    :param timeout: seconds per lookup (Scrapy's ``DNS_TIMEOUT``); None for the resolver's.
    :param addrconfig: ask only for the families configured on this host.
    """

    def __init__(
        self,
        reactor: Any,
        resolver: Resolver | None = None,
        *,
        policy: AddressPolicy | None = None,
        timeout: float | None = None,
        addrconfig: bool = True,
    ) -> None:
        self.reactor = reactor
        self._owns_resolver = resolver is None
        self.resolver = resolver if resolver is not None else Resolver()
        self.policy = policy
        self.timeout = timeout
        self.addrconfig = addrconfig

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> AsyncResolveResolver:
        """Settings: ``ASYNCRESOLVE_RESOLVER`` (a ``Resolver``, which stays the caller's to
        close, or a callable returning one, or an import path to either), else
        ``ASYNCRESOLVE_NAMESERVERS`` (``["ip:port", ...]`` for a c-ares chain) or the default
        chain, with a cache of ``DNSCACHE_SIZE`` entries (none when ``DNSCACHE_ENABLED`` is
        false); ``ASYNCRESOLVE_POLICY``; ``DNS_TIMEOUT``."""
        settings = crawler.settings
        configured = settings.get("ASYNCRESOLVE_RESOLVER")
        resolver = _load(configured)
        owned = not isinstance(configured, Resolver)  # built here or by a factory: closed at shutdown
        if resolver is None:
            cache = TTLCache(max_entries=settings.getint("DNSCACHE_SIZE")) if settings.getbool("DNSCACHE_ENABLED") \
                else None
            nameservers = settings.getlist("ASYNCRESOLVE_NAMESERVERS")
            backends = [CaresBackend(nameservers)] if nameservers else None
            resolver = Resolver(backends, cache=cache)
        elif not isinstance(resolver, Resolver):
            raise TypeError(f"ASYNCRESOLVE_RESOLVER must give a Resolver, not {type(resolver).__name__}")
        policy = _load(settings.get("ASYNCRESOLVE_POLICY"))
        timeout = settings.getfloat("DNS_TIMEOUT") or None
        instance = cls(reactor, resolver, policy=policy, timeout=timeout)
        instance._owns_resolver = owned
        return instance

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)
        self.reactor.addSystemEventTrigger("before", "shutdown", self._close)

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self.reactor, "_asyncioEventloop", None)
        if loop is None:
            raise RuntimeError("AsyncResolveResolver needs Twisted's asyncio reactor: set TWISTED_REACTOR = "
                               "'twisted.internet.asyncioreactor.AsyncioSelectorReactor'")
        return loop

    def _close(self) -> Deferred[None] | None:
        if not self._owns_resolver:
            return None
        return Deferred.fromFuture(asyncio.ensure_future(self.resolver.aclose(), loop=self._loop()))

    async def _addresses(self, name: str, family: int) -> list[str]:
        try:
            return await connect_addresses(self.resolver, name, family=family, policy=self.policy,
                                           addrconfig=self.addrconfig, timeout=self.timeout)
        except ResolveError as error:
            os_error = os_error_for(error)
            os_error.__cause__ = error
            raise ResolutionFailed(os_error.strerror or str(os_error)) from os_error

    def resolveHostName(
        self,
        resolutionReceiver: Any,  # IResolutionReceiver (zope interfaces are not mypy types)
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[Any]] | None = None,
        transportSemantics: Any = "TCP",
    ) -> Any:
        """Resolve ``hostName``; the receiver gets each address, then ``resolutionComplete``
        (with no address when the lookup failed or the policy refused every address)."""
        types = set(addressTypes or (IPv4Address, IPv6Address))
        family = socket.AF_UNSPEC
        if types == {IPv4Address}:
            family = socket.AF_INET
        elif types == {IPv6Address}:
            family = socket.AF_INET6
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        future = asyncio.ensure_future(self._addresses(hostName, family), loop=self._loop())
        resolution.future = future

        def deliver(addresses: list[str]) -> None:
            for address in addresses:
                if ":" in address:
                    resolutionReceiver.addressResolved(IPv6Address(transportSemantics, address, portNumber))
                else:
                    resolutionReceiver.addressResolved(IPv4Address(transportSemantics, address, portNumber))
            resolutionReceiver.resolutionComplete()

        def fail(failure: Any) -> None:
            error = failure.value
            cause = getattr(error.__cause__, "__cause__", None)
            if isinstance(error.__cause__, PermissionError):
                log.warning("asyncresolve refused %s: %s", hostName, cause)
            else:
                log.debug("asyncresolve could not resolve %s: %s", hostName, cause or error)
            resolutionReceiver.resolutionComplete()

        Deferred.fromFuture(future).addCallbacks(deliver, fail)
        return resolution

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        """``IResolverSimple``: the first IPv4 address of ``name``; fails with
        ``ResolutionFailed`` (a ``DNSLookupError`` and a ``socket.gaierror``)."""
        future = asyncio.ensure_future(self._addresses(name, socket.AF_INET), loop=self._loop())
        first: Callable[[list[str]], str] = lambda addresses: addresses[0]  # noqa: E731
        return Deferred.fromFuture(future).addCallback(first)


__all__ = ["AsyncResolveResolver", "ResolutionFailed"]
