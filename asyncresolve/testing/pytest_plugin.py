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
    random 127.x address and a free port.  Like :class:`DNSLab`, it adds an
    SOA and an apex NS (``ns1.<zone>``, addressed at the server) to a zone
    that lacks them.
``dns_lab_options``
    Default keyword arguments for both lab factories; override it in a
    ``conftest.py`` (e.g. ``return {"port": 53}``) or use the
    ``--dns-lab-port`` command-line option.

This module is loaded into every pytest run of a project that has
asyncresolve installed, so it imports nothing at load time beyond pytest:
the lab is imported when a fixture is used, and the async fixtures need
pytest-asyncio (``pip install 'asyncresolve[testing]'``), which is looked up
only then.  Without it, a test using them fails with that advice; every
other test of the project is untouched.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import dns.zone

    from .lab import DNSLab
    from .server import AuthServer
    from .zones import ZoneSource

LabFactory = Callable[..., Awaitable["DNSLab"]]
SyncLabFactory = Callable[..., "DNSLab"]
ServerFactory = Callable[..., Awaitable["AuthServer"]]

NEEDS_PYTEST_ASYNCIO = (
    "the asyncresolve fixture {name!r} is async and needs pytest-asyncio: "
    "pip install 'asyncresolve[testing]' (or pytest-asyncio)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asyncresolve", "asyncresolve DNS lab")
    group.addoption(
        "--dns-lab-port",
        type=int,
        default=None,
        help="port for every DNSLab server started by the dns_lab fixtures (53 needs root)",
    )


def _async_fixture(function: Callable[..., Any]) -> Any:
    """``pytest_asyncio.fixture`` where pytest-asyncio is installed (so the fixture works in
    strict and auto mode); otherwise a fixture that fails the test using it with advice."""
    if importlib.util.find_spec("pytest_asyncio") is not None:
        import pytest_asyncio

        return pytest_asyncio.fixture(function)

    def missing() -> None:
        pytest.fail(NEEDS_PYTEST_ASYNCIO.format(name=function.__name__), pytrace=False)

    missing.__name__ = function.__name__
    missing.__doc__ = function.__doc__
    return pytest.fixture(name=function.__name__)(missing)


@pytest.fixture
def dns_lab_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Default keyword arguments of the ``dns_lab`` / ``dns_lab_in_thread`` factories."""
    port = request.config.getoption("--dns-lab-port", default=None)
    return {} if port is None else {"port": port}


@_async_fixture
async def dns_lab(dns_lab_options: dict[str, Any]) -> AsyncIterator[LabFactory]:
    """Async factory starting :class:`DNSLab` instances, stopped at teardown.

    Example::

        async def test_resolves(dns_lab):
            lab = await dns_lab({"example.test.": "www 60 IN A 192.0.2.10"})
            resolver = MyResolver(root_hints=lab.root_hints)
            ...
    """
    from .lab import DNSLab

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
    from .lab import DNSLab

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


@_async_fixture
async def dns_server() -> AsyncIterator[ServerFactory]:
    """Async factory for one :class:`AuthServer` serving the given zones.

    ``host`` defaults to a fresh random loopback address and ``port`` to a
    free one; every other keyword goes to :class:`AuthServer`.  A zone without
    an SOA gets one, and a zone without apex NS gets ``ns1.<zone>`` with the
    server's address, as :class:`DNSLab` does.  Example::

        async def test_nxdomain(dns_server):
            server = await dns_server({"example.test.": "www 60 IN A 192.0.2.10"})
            reply = await dns.asyncquery.udp(query, *server.address)
    """
    from .addresses import LoopbackAllocator
    from .server import AuthServer

    servers: list[AuthServer] = []

    async def start(zones: Mapping[str, ZoneSource], **options: Any) -> AuthServer:
        host = options.setdefault("host", LoopbackAllocator().allocate())
        server = AuthServer(complete_zones(zones, host), **options)
        await server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(servers):
            await server.stop()


def complete_zones(zones: Mapping[str, ZoneSource], host: str) -> dict[str, dns.zone.Zone]:
    """Parse *zones* and give each an SOA and apex NS where it has none (the lab's defaults:
    ``ns1.<zone>`` at *host*, SOA ``ns1.<zone> hostmaster.<zone> 1 7200 900 1209600 300``)."""
    import dns.name
    import dns.rdataclass
    import dns.rdataset
    import dns.rdatatype

    from .hierarchy import DEFAULT_SOA_TIMERS, DEFAULT_TTL
    from .zones import parse_zone

    completed: dict[str, dns.zone.Zone] = {}
    for origin, source in zones.items():
        zone = parse_zone(source, origin)
        apex = zone.origin
        assert apex is not None
        ns_name = dns.name.Name((b"ns1", *apex.labels))
        if zone.get_rdataset(apex, dns.rdatatype.NS) is None:
            zone.replace_rdataset(apex, dns.rdataset.from_text(
                dns.rdataclass.IN, dns.rdatatype.NS, DEFAULT_TTL, ns_name.to_text()))
            if zone.get_node(ns_name) is None:
                rdtype = dns.rdatatype.AAAA if ":" in host else dns.rdatatype.A
                zone.replace_rdataset(ns_name, dns.rdataset.from_text(dns.rdataclass.IN, rdtype, DEFAULT_TTL, host))
        if zone.get_rdataset(apex, dns.rdatatype.SOA) is None:
            apex_ns = zone.get_rdataset(apex, dns.rdatatype.NS)
            assert apex_ns is not None
            mname = next(iter(apex_ns)).target
            rname = dns.name.Name((b"hostmaster", *apex.labels))
            zone.replace_rdataset(apex, dns.rdataset.from_text(
                dns.rdataclass.IN, dns.rdatatype.SOA, DEFAULT_TTL, f"{mname} {rname} {DEFAULT_SOA_TIMERS}"))
        completed[apex.to_text()] = zone
    return completed
