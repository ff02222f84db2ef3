"""asyncresolve as aiohttp's resolver: ``TCPConnector(resolver=AiohttpResolver(r), use_dns_cache=False)``.

aiohttp's own DNS cache keeps every answer for a fixed 10 s whatever its TTL, and does
not cache failures; the resolver's cache keeps real TTLs and caches NXDOMAIN/NODATA for
their RFC 2308 TTL, and its coalescing already merges concurrent lookups of one name, so
the connector's cache is best switched off.
"""

from __future__ import annotations

import socket

from aiohttp import ClientConnectorError, ClientRequest, ClientResponse
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_middlewares import ClientHandlerType

from asyncresolve import AddressRefused, ResolveError, Resolver
from asyncresolve.policy import AddressPolicy, parse_ip_host

from ._connect import connect_addresses, os_error_for

_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class AiohttpResolver(AbstractResolver):
    """aiohttp's ``AbstractResolver`` on an asyncresolve ``Resolver``.

    :param resolver: the ``Resolver`` to use; default a new ``Resolver()`` (the default
        chain), closed by ``close()``. A resolver passed in is the caller's to close.
    :param policy: an ``AddressPolicy``: refused addresses are never returned, and a name
        with none left fails with ``PermissionError`` (EACCES) chained to ``AddressRefused``,
        which aiohttp raises as ``ClientConnectorDNSError``.
    :param addrconfig: ask only for the families configured on this host (``AI_ADDRCONFIG``,
        as aiohttp's own resolvers do).

    For ``AF_UNSPEC`` (the connector's default family) both families come back, in the
    order to try them (RFC 6724, interleaved per RFC 8305) for aiohttp's Happy Eyeballs.
    A lookup failure raises ``socket.gaierror`` chained to the asyncresolve error; aiohttp
    turns it into ``ClientConnectorDNSError`` naming the host.

    aiohttp never asks its resolver about a URL whose host is an IP address: with a policy,
    also pass ``middlewares=[resolver.ip_literal_guard]`` to the ``ClientSession``.
    """

    def __init__(
        self, resolver: Resolver | None = None, *, policy: AddressPolicy | None = None, addrconfig: bool = True
    ) -> None:
        self._owns_resolver = resolver is None
        self.resolver = resolver if resolver is not None else Resolver()
        self.policy = policy
        self.addrconfig = addrconfig

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await connect_addresses(
                self.resolver, host, family=family, policy=self.policy, addrconfig=self.addrconfig
            )
        except ResolveError as error:
            raise os_error_for(error) from error
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=_FLAGS,
            )
            for address in addresses
        ]

    async def ip_literal_guard(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        """aiohttp client middleware: the policy for URLs whose host is an IP address (which
        aiohttp connects to without asking the resolver), redirects included. A refused one
        raises ``ClientConnectorError`` whose ``os_error`` is a ``PermissionError`` caused by
        ``AddressRefused``, before any connection."""
        host = request.url.raw_host
        address = parse_ip_host(host) if self.policy is not None and host else None
        if address is not None and self.policy is not None:
            try:
                self.policy.check(address, host)
            except AddressRefused as error:
                os_error = os_error_for(error)
                os_error.__cause__ = error
                raise ClientConnectorError(request.connection_key, os_error) from os_error
        return await handler(request)

    async def close(self) -> None:
        if self._owns_resolver:
            await self.resolver.aclose()


__all__ = ["AiohttpResolver"]
