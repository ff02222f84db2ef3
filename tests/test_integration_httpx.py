"""httpx / httpcore with asyncresolve: HTTP and HTTPS by lab names (the certificate still
checked against the name), Happy Eyeballs, errors."""

import socket
import ssl
import time

import httpcore
import httpx
import pytest
import trustme
from aiohttp import web as aiohttp_web
from integration_support import CRAWL_ZONES, http_server, lab_resolver

from asyncresolve import AddressRefused, NXDomain
from asyncresolve.integrations import happy_eyeballs
from asyncresolve.integrations.httpx import AsyncResolveBackend, AsyncResolveTransport
from asyncresolve.policy import AddressPolicy


def causes(error):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


async def test_http_by_lab_hostname(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server() as port, lab_resolver(lab) as resolver:
        async with httpx.AsyncClient(transport=AsyncResolveTransport(resolver)) as client:
            response = await client.get(f"http://blog.crawl.test:{port}/post/1")
        assert not resolver._closed  # closing the transport leaves the caller's resolver open
    assert response.status_code == 200
    assert response.text == f"host=blog.crawl.test:{port} path=/post/1 server=127.0.0.1"
    assert lab.queries_for("blog.crawl.test", "A")


async def test_https_checks_the_certificate_against_the_hostname(dns_lab):
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("secure.crawl.test").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server(ssl_context=server_context) as port, lab_resolver(lab) as resolver:
        transport = AsyncResolveTransport(resolver, verify=client_context)
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"https://secure.crawl.test:{port}/")
            assert response.status_code == 200
            assert response.text.startswith(f"host=secure.crawl.test:{port} ")
            # same address, another name: the certificate does not match, so no connection
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(f"https://other.crawl.test:{port}/")
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in causes(info.value)), repr(info.value)
    assert "other.crawl.test" in str(info.value) or "Hostname mismatch" in str(info.value)


async def test_nxdomain_is_connect_error_caused_by_gaierror(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with lab_resolver(lab) as resolver, httpx.AsyncClient(transport=AsyncResolveTransport(resolver)) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.get("http://nope.crawl.test:8080/")
    chain = list(causes(info.value))
    assert any(isinstance(e, socket.gaierror) and e.errno == socket.EAI_NONAME for e in chain)
    assert any(isinstance(e, NXDomain) for e in chain)


async def test_policy_refusal_is_connect_error_caused_by_address_refused(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server() as port, lab_resolver(lab) as resolver:
        transport = AsyncResolveTransport(resolver, policy=AddressPolicy())
        async with httpx.AsyncClient(transport=transport) as client:
            for url in (f"http://www.crawl.test:{port}/", f"http://0x7f.1:{port}/", f"http://2130706433:{port}/",
                        f"http://[::ffff:127.0.0.1]:{port}/"):
                with pytest.raises(httpx.ConnectError) as info:
                    await client.get(url)
                chain = list(causes(info.value))
                assert any(isinstance(e, PermissionError) for e in chain), url
                assert any(isinstance(e, AddressRefused) and e.reason.startswith("loopback") for e in chain), url
        allowed = AsyncResolveTransport(resolver, policy=AddressPolicy(exceptions={"www.crawl.test": ["127.0.0.1"]}))
        async with httpx.AsyncClient(transport=allowed) as client:
            assert (await client.get(f"http://www.crawl.test:{port}/")).status_code == 200
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://blog.crawl.test:{port}/")


def silent_ipv6_listener(port):
    """A socket on [::1]:port whose accept queue is full: further SYNs are dropped, so a
    connection attempt hangs as it would towards a black-holed address."""
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind(("::1", port))
    listener.listen(0)
    filler = socket.create_connection(("::1", port), timeout=2)
    return listener, filler


async def test_happy_eyeballs_falls_back_from_a_closed_ipv6_port_at_once(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server("127.0.0.1") as port, lab_resolver(lab) as resolver:
        backend = AsyncResolveBackend(resolver, addrconfig=False, happy_eyeballs_delay=2.0)
        await resolver.resolve_addresses("dual.crawl.test")  # time the connection, not the lookup
        started = time.monotonic()
        stream = await backend.connect_tcp("dual.crawl.test", port, timeout=10)
        elapsed = time.monotonic() - started
        assert stream.get_extra_info("server_addr")[0] == "127.0.0.1"
        await stream.aclose()
    assert elapsed < 2.0, elapsed  # refused at once: no need to wait the delay


async def test_happy_eyeballs_falls_back_from_a_silent_ipv6_address_within_the_delay(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    async with http_server("127.0.0.1") as port, lab_resolver(lab) as resolver:
        listener, filler = silent_ipv6_listener(port)
        try:
            delay = happy_eyeballs.HAPPY_EYEBALLS_DELAY
            transport = AsyncResolveTransport(resolver, addrconfig=False)
            assert transport.network_backend.happy_eyeballs_delay == delay == 0.25
            await resolver.resolve_addresses("dual.crawl.test")
            async with httpx.AsyncClient(transport=transport, timeout=10) as client:
                started = time.monotonic()
                response = await client.get(f"http://dual.crawl.test:{port}/")
                elapsed = time.monotonic() - started
        finally:
            filler.close()
            listener.close()
    assert response.text.endswith("server=127.0.0.1")
    # IPv6 was tried first and hung; IPv4 started after the delay, not after a connect timeout
    print(f"fell back to IPv4 after {elapsed:.3f} s")
    assert delay <= elapsed < delay + 1.5, elapsed


async def test_every_address_failing_is_one_connect_error():
    with socket.socket() as a, socket.socket(socket.AF_INET6) as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("::1", 0))
        ports = (a.getsockname()[1], b.getsockname()[1])  # bound, not listening: refused
    with pytest.raises(OSError, match=r"cannot connect to any of ::1, 127\.0\.0\.1") as info:
        await happy_eyeballs.connect_tcp(["::1", "127.0.0.1"], ports[0], delay=5)
    assert len(info.value.errors) == 2
    with pytest.raises(OSError, match="no address"):
        await happy_eyeballs.connect_tcp([], 80)


async def test_connect_timeout_is_httpcore_connect_timeout(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    lab.stub.faults.delay = 5
    async with lab_resolver(lab) as resolver:
        backend = AsyncResolveBackend(resolver)
        started = time.monotonic()
        with pytest.raises(httpcore.ConnectTimeout):
            await backend.connect_tcp("slow.crawl.test", 80, timeout=0.3)
        assert time.monotonic() - started < 3


def test_transport_keeps_the_pool_options():
    transport = AsyncResolveTransport(limits=httpx.Limits(max_connections=7, max_keepalive_connections=3),
                                      retries=2, http2=False)
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert pool._max_connections == 7
    assert pool._max_keepalive_connections == 3
    assert pool._retries == 2
    assert pool._network_backend is transport.network_backend
    proxied = AsyncResolveTransport(proxy="http://127.0.0.1:3128", policy=AddressPolicy())
    assert isinstance(proxied._pool, httpcore.AsyncHTTPProxy)
    assert proxied.network_backend.policy is None  # the proxy resolves the targets
    with pytest.raises(ValueError, match="Unknown scheme for proxy URL"):  # httpx.Proxy's own check
        AsyncResolveTransport(proxy="ftp://127.0.0.1:21")


async def test_http_proxy_name_is_resolved_here_and_targets_by_the_proxy(dns_lab):
    lab = await dns_lab(CRAWL_ZONES)
    seen = []

    async def proxy(request):
        seen.append((request.method, str(request.url), request.headers.get("Host")))
        return aiohttp_web.Response(text="from the proxy")

    async with http_server(handler=proxy) as port, lab_resolver(lab) as resolver:
        transport = AsyncResolveTransport(resolver, proxy=f"http://inner.crawl.test:{port}", policy=AddressPolicy())
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get("http://target.elsewhere.test/page")
    assert response.text == "from the proxy"
    assert seen
    assert seen[0][2] == "target.elsewhere.test"
    assert lab.queries_for("inner.crawl.test")  # the proxy's name went through asyncresolve
    assert not lab.queries_for("target.elsewhere.test")  # the target's name is the proxy's business


async def test_http2_over_tls_by_lab_hostname(dns_lab, tmp_path):
    import asyncio

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = f"{scope['http_version']} {dict(scope['headers']).get(b'host', b'')!r}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    ca = trustme.CA()
    cert = ca.issue_cert("secure.crawl.test")
    (tmp_path / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    (tmp_path / "key.pem").write_bytes(cert.private_key_pem.bytes())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns and closes it
    config.certfile, config.keyfile = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    config.alpn_protocols = ["h2", "http/1.1"]
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    lab = await dns_lab(CRAWL_ZONES)
    try:
        async with lab_resolver(lab) as resolver:
            transport = AsyncResolveTransport(resolver, http2=True, verify=client_context)
            async with httpx.AsyncClient(transport=transport, timeout=10) as client:
                for attempt in range(50):  # the server may still be starting
                    try:
                        response = await client.get(f"https://secure.crawl.test:{port}/h2")
                        break
                    except httpx.ConnectError:
                        if attempt == 49:
                            raise
                        await asyncio.sleep(0.1)
    finally:
        stop.set()
        await server
    assert response.http_version == "HTTP/2"
    assert response.text == f"2 b'secure.crawl.test:{port}'"
