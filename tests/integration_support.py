"""Shared by the integration tests: the lab zones of a small "crawl" site, resolvers on the
lab, and local HTTP(S) servers (aiohttp.web) on loopback."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import AsyncIterator

from aiohttp import web

from asyncresolve import Resolver
from asyncresolve.backends import CaresBackend

HOSTS = [f"host{i}" for i in range(50)]

CRAWL_ZONES = {
    "crawl.test.": "\n".join([
        "@      3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300",
        "@      3600 IN NS  ns1",
        "ns1    3600 IN A   127.0.0.1",
        "www    300  IN A   127.0.0.1",
        "blog   300  IN A   127.0.0.1",
        "secure 300  IN A   127.0.0.1",
        "other  300  IN A   127.0.0.1",
        "dual   300  IN A   127.0.0.1",
        "dual   300  IN AAAA ::1",
        "v6     300  IN AAAA ::1",
        "inner  300  IN A   127.0.0.1",
        *(f"{h} 300 IN A 127.0.0.1" for h in HOSTS),
    ]),
}


def lab_resolver(lab: object, **options: object) -> Resolver:
    """A resolver asking only the lab's stub server (c-ares). c-ares waits 4 s before a retry:
    on a loaded machine a retry would be counted at the lab as a second lookup."""
    ip, port = lab.stub_server  # type: ignore[attr-defined]
    return Resolver(backends=[CaresBackend([f"{ip}:{port}"], timeout=4.0)], **options)  # type: ignore[arg-type]


async def echo(request: web.Request) -> web.Response:
    """Names the Host header and the path, so a test sees which name reached the server."""
    server = request.transport.get_extra_info("sockname")[0] if request.transport else "?"
    return web.Response(text=f"host={request.host} path={request.path} server={server}")


@contextlib.asynccontextmanager
async def http_server(
    host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None, handler: object = echo
) -> AsyncIterator[int]:
    """An aiohttp.web server on ``host`` answering every path with ``handler``; yields its port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    site = web.SockSite(runner, sock, ssl_context=ssl_context)
    await site.start()
    try:
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()
        sock.close()
