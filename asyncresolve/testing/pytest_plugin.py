"""pytest fixtures for DNS labs and single authoritative servers.

Enabled automatically when asyncresolve is installed (``pytest11`` entry
point); otherwise add ``-p asyncresolve.testing.pytest_plugin`` or
``pytest_plugins = ["asyncresolve.testing.pytest_plugin"]`` in the root
``conftest.py``.

Fixtures (function scope; everything started is stopped at teardown):

``dns_lab``
    Async factory: ``lab = await dns_lab(ZONES, servers_per_zone=2)`` starts
    a :class:`~asyncresolve.testing.DNSLab` (same keyword arguments).
``dns_lab_in_thread``
    Sync factory, same arguments: the lab runs on its own event loop in a
    background thread - for sync code and tests that run subprocesses.
``dns_server``
    Async factory for one :class:`~asyncresolve.testing.AuthServer`:
    ``server = await dns_server({"example.test.": ZONE_TEXT})``, on a fresh
    random 127.x address and a free port.
``dns_lab_options``
    Default keyword arguments for both lab factories; override it in a
    ``conftest.py`` (e.g. ``return {"port": 53}``) or use the
    ``--dns-lab-port`` command-line option.

Async fixtures need pytest-asyncio (they are declared with
``pytest_asyncio.fixture``, so they work in strict and auto mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

from .addresses import LoopbackAllocator
from .lab import DNSLab
from .server import AuthServer
from .zones import ZoneSource

LabFactory = Callable[..., Awaitable[DNSLab]]
SyncLabFactory = Callable[..., DNSLab]
ServerFactory = Callable[..., Awaitable[AuthServer]]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asyncresolve", "asyncresolve DNS lab")
    group.addoption(
        "--dns-lab-port",
        type=int,
        default=None,
        help="port for every DNSLab server started by the dns_lab fixtures (53 needs root)",
    )


@pytest.fixture
def dns_lab_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Default keyword arguments of the ``dns_lab`` / ``dns_lab_in_thread`` factories."""
    port = request.config.getoption("--dns-lab-port", default=None)
    return {} if port is None else {"port": port}


@pytest_asyncio.fixture
async def dns_lab(dns_lab_options: dict[str, Any]) -> AsyncIterator[LabFactory]:
    """Async factory starting :class:`DNSLab` instances, stopped at teardown.

    Example::

        async def test_resolves(dns_lab):
            lab = await dns_lab({"example.test.": "www 60 IN A 192.0.2.10"})
            resolver = MyResolver(root_hints=lab.root_hints)
            ...
    """
    labs: list[DNSLab] = []

    async def start(zones: Mapping[str, ZoneSource] | None = None, **options: Any) -> DNSLab:
        lab = DNSLab(zones, **{**dns_lab_options, **options})
        await lab.start()
        labs.append(lab)
        return lab

    try:
        yield start
    finally:
        for lab in reversed(labs):
            await lab.stop()


@pytest.fixture
def dns_lab_in_thread(dns_lab_options: dict[str, Any]) -> Iterator[SyncLabFactory]:
    """Sync factory: like ``dns_lab`` but the lab runs in a background thread.

    Example::

        def test_cli(dns_lab_in_thread):
            lab = dns_lab_in_thread(ZONES)
            ip, port = lab.stub_server
            subprocess.run(["dig", f"@{ip}", "-p", str(port), "www.example.test."])
    """
    labs: list[DNSLab] = []

    def start(zones: Mapping[str, ZoneSource] | None = None, **options: Any) -> DNSLab:
        lab = DNSLab(zones, **{**dns_lab_options, **options}).start_in_thread()
        labs.append(lab)
        return lab

    try:
        yield start
    finally:
        for lab in reversed(labs):
            lab.stop_thread()


@pytest_asyncio.fixture
async def dns_server() -> AsyncIterator[ServerFactory]:
    """Async factory for one :class:`AuthServer` serving the given zones.

    ``host`` defaults to a fresh random loopback address and ``port`` to a
    free one; every other keyword goes to :class:`AuthServer`.  Example::

        async def test_nxdomain(dns_server):
            server = await dns_server({"example.test.": ZONE})
            reply = await dns.asyncquery.udp(query, *server.address)
    """
    servers: list[AuthServer] = []

    async def start(zones: Mapping[str, ZoneSource], **options: Any) -> AuthServer:
        options.setdefault("host", LoopbackAllocator().allocate())
        server = AuthServer(zones, **options)
        await server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(servers):
            await server.stop()
