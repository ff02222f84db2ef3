"""asyncresolve under httpx/httpcore: ``httpx.AsyncClient(transport=AsyncResolveTransport(r))``.

httpx resolves names through the OS (anyio's ``getaddrinfo``) and its transports take no
resolver. ``AsyncResolveBackend`` is an ``httpcore.AsyncNetworkBackend`` whose
``connect_tcp`` resolves the host with asyncresolve, applies the ``AddressPolicy`` and
races the allowed addresses with Happy Eyeballs (RFC 8305, 250 ms between attempts by
default). httpcore still hands the origin's host name to ``start_tls``, so TLS checks the
certificate against the name, not against the address connected to.
"""

from __future__ import annotations

import ssl
import typing
from collections.abc import Iterable

import anyio
import anyio.abc
import anyio.streams.tls
import httpcore
import httpx

from asyncresolve import ResolveError, Resolver
from asyncresolve.policy import AddressPolicy

from ._connect import connect_addresses, os_error_for
from .happy_eyeballs import HAPPY_EYEBALLS_DELAY, connect_tcp

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Stream(httpcore.AsyncNetworkStream):
    """An httpcore stream over an anyio byte stream (plain TCP or TLS)."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            with anyio.fail_after(timeout):
                return await self._stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as error:
            raise httpcore.ReadTimeout(str(error)) from error
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as error:
            raise httpcore.ReadError(str(error) or type(error).__name__) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            with anyio.fail_after(timeout):
                await self._stream.send(buffer)
        except TimeoutError as error:
            raise httpcore.WriteTimeout(str(error)) from error
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as error:
            raise httpcore.WriteError(str(error) or type(error).__name__) from error

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                tls = await anyio.streams.tls.TLSStream.wrap(
                    self._stream, ssl_context=ssl_context, hostname=server_hostname,
                    standard_compatible=False, server_side=False,
                )
        except BaseException as error:
            await anyio.aclose_forcefully(self._stream)
            if isinstance(error, TimeoutError):
                raise httpcore.ConnectTimeout(str(error)) from error
            if isinstance(error, (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)):
                raise httpcore.ConnectError(str(error) or type(error).__name__) from error
            raise
        return _Stream(tls)

    def get_extra_info(self, info: str) -> typing.Any:
        extra = self._stream.extra
        if info == "ssl_object":
            return extra(anyio.streams.tls.TLSAttribute.ssl_object, None)
        if info == "client_addr":
            return extra(anyio.abc.SocketAttribute.local_address, None)
        if info == "server_addr":
            return extra(anyio.abc.SocketAttribute.remote_address, None)
        if info == "socket":
            return extra(anyio.abc.SocketAttribute.raw_socket, None)
        if info == "is_readable":
            sock = extra(anyio.abc.SocketAttribute.raw_socket, None)
            return sock is not None and _is_readable(sock)
        return None


def _is_readable(sock: typing.Any) -> bool:
    """True when the peer closed or sent data on an idle pooled connection."""
    import select

    if sock.fileno() < 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class AsyncResolveBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with asyncresolve doing the name resolution.

    :param resolver: the ``Resolver``; default a new ``Resolver()``, closed by ``aclose()``.
    :param policy: an ``AddressPolicy``; refused addresses are never connected to.
    :param happy_eyeballs_delay: seconds before the next address is tried while an attempt
        is pending (RFC 8305; default 0.25).
    :param addrconfig: resolve only the families configured on this host (``AI_ADDRCONFIG``).

    Failures raise ``httpcore.ConnectError`` (httpx: ``httpx.ConnectError``) whose cause
    is a ``socket.gaierror`` (lookup failed) or ``PermissionError`` (policy), itself caused
    by the asyncresolve error; ``httpcore.ConnectTimeout`` when ``timeout`` runs out.
    """

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        policy: AddressPolicy | None = None,
        happy_eyeballs_delay: float = HAPPY_EYEBALLS_DELAY,
        addrconfig: bool = True,
    ) -> None:
        self._owns_resolver = resolver is None
        self.resolver = resolver if resolver is not None else Resolver()
        self.policy = policy
        self.happy_eyeballs_delay = happy_eyeballs_delay
        self.addrconfig = addrconfig
        self._unix = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                try:
                    addresses = await connect_addresses(
                        self.resolver, host, policy=self.policy, addrconfig=self.addrconfig, timeout=timeout
                    )
                except ResolveError as error:
                    raise os_error_for(error) from error
                stream = await connect_tcp(
                    addresses, port, delay=self.happy_eyeballs_delay, local_address=local_address
                )
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from error
        except OSError as error:
            raise httpcore.ConnectError(f"cannot connect to {host}:{port}: {error.strerror or error}") from error
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return await self._unix.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    async def aclose(self) -> None:
        """Close the resolver if this backend created it."""
        if self._owns_resolver:
            await self.resolver.aclose()


class AsyncResolveTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections resolve with asyncresolve: an
    ``httpcore.AsyncConnectionPool(network_backend=AsyncResolveBackend(...))``.

    ``resolver``, ``policy``, ``happy_eyeballs_delay`` and ``addrconfig`` go to
    ``AsyncResolveBackend``; the other keywords are ``httpx.AsyncHTTPTransport``'s
    (``verify``, ``cert``, ``trust_env``, ``http1``, ``http2``, ``limits``, ``proxy``,
    ``uds``, ``local_address``, ``retries``, ``socket_options``) with the same meaning.
    With a ``proxy`` only the proxy's own name is resolved here: the proxy resolves the
    target hosts, so the policy cannot see them and is not applied.
    """

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        policy: AddressPolicy | None = None,
        happy_eyeballs_delay: float = HAPPY_EYEBALLS_DELAY,
        addrconfig: bool = True,
        verify: ssl.SSLContext | str | bool = True,
        cert: typing.Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),  # noqa: B008
        proxy: httpx.Proxy | httpx.URL | str | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> None:
        proxy = httpx.Proxy(url=proxy) if isinstance(proxy, (str, httpx.URL)) else proxy
        self.network_backend = AsyncResolveBackend(
            resolver, policy=None if proxy else policy, happy_eyeballs_delay=happy_eyeballs_delay,
            addrconfig=addrconfig,
        )
        ssl_context = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        common: dict[str, typing.Any] = {
            "ssl_context": ssl_context,
            "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry,
            "http1": http1,
            "http2": http2,
            "network_backend": self.network_backend,
        }
        self._pool: typing.Any  # httpx.AsyncHTTPTransport sends every request through it
        if proxy is None:
            self._pool = httpcore.AsyncConnectionPool(
                uds=uds, local_address=local_address, retries=retries, socket_options=socket_options, **common
            )
            return
        proxy_url = httpcore.URL(scheme=proxy.url.raw_scheme, host=proxy.url.raw_host, port=proxy.url.port,
                                 target=proxy.url.raw_path)
        if proxy.url.scheme in ("http", "https"):
            self._pool = httpcore.AsyncHTTPProxy(
                proxy_url=proxy_url, proxy_auth=proxy.raw_auth, proxy_headers=proxy.headers.raw,
                proxy_ssl_context=proxy.ssl_context, socket_options=socket_options, **common,
            )
        elif proxy.url.scheme in ("socks5", "socks5h"):
            self._pool = httpcore.AsyncSOCKSProxy(proxy_url=proxy_url, proxy_auth=proxy.raw_auth, **common)
        else:
            raise ValueError(f"proxy scheme must be http, https, socks5 or socks5h, not {proxy.url.scheme!r}")

    async def aclose(self) -> None:
        await super().aclose()
        await self.network_backend.aclose()


__all__ = ["HAPPY_EYEBALLS_DELAY", "AsyncResolveBackend", "AsyncResolveTransport"]
