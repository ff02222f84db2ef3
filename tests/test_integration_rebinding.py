"""DNS rebinding: a name whose TTL-0 answer alternates between an allowed address and a
refused one. The integrations check the addresses once and connect only to those, so the
refused side is never reached, however the answers interleave.

The lab's addresses are all loopback, so the policy plays the roles: 127.0.0.2 is allowed
(the "public" site), 127.0.0.1 is refused (the crawler's own network).
"""

import asyncio
import itertools
import socket

import aiohttp
import dns.message
import dns.rdatatype
import dns.rrset
import httpx
import pytest
from aiohttp import web

from asyncresolve import AddressRefused, Resolver
from asyncresolve.backends import CaresBackend
from asyncresolve.integrations.aiohttp import AiohttpResolver
from asyncresolve.integrations.httpx import AsyncResolveTransport
from asyncresolve.policy import AddressPolicy

PUBLIC, INTERNAL = "127.0.0.2", "127.0.0.1"
NAME = "rebind.attacker.test."
SOA = ("attacker.test.", 0, "IN", "SOA", "ns.attacker.test. h.attacker.test. 1 60 60 60 0")


class RebindingServer(asyncio.DatagramProtocol):
    """Answers A queries for NAME with TTL 0, alternating PUBLIC and INTERNAL; NODATA else."""

    def __init__(self):
        self.addresses = itertools.cycle([PUBLIC, INTERNAL])
        self.answered = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.name.to_text().lower() == NAME and question.rdtype == dns.rdatatype.A:
            address = next(self.addresses)
            self.answered.append(address)
            response.answer.append(dns.rrset.from_text(NAME, 0, "IN", "A", address))
        else:
            response.authority.append(dns.rrset.from_text(*SOA))
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def rebinding_dns():
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(RebindingServer, local_addr=("127.0.0.1", 0))
    yield server, "{}:{}".format(*transport.get_extra_info("sockname"))
    transport.close()


@pytest.fixture
async def two_sites():
    """The same port on PUBLIC and INTERNAL; counts the requests each one gets."""
    hits = {PUBLIC: 0, INTERNAL: 0}
    runners = []
    port = 0
    for address in (PUBLIC, INTERNAL):
        async def handler(request, address=address):
            hits[address] += 1
            return web.Response(text=address)

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        runners.append(runner)
    yield port, hits
    for runner in runners:
        await runner.cleanup()


POLICY = AddressPolicy(allow=[f"{PUBLIC}/32"])


async def test_the_name_really_rebinds(rebinding_dns):
    _, nameserver = rebinding_dns
    async with Resolver([CaresBackend([nameserver])]) as resolver:
        seen = [await resolver.resolve_addresses(NAME, socket.AF_INET) for _ in range(4)]
    assert seen == [[PUBLIC], [INTERNAL], [PUBLIC], [INTERNAL]]  # TTL 0: never cached


async def test_aiohttp_never_connects_to_the_rebound_address(rebinding_dns, two_sites):
    server, nameserver = rebinding_dns
    port, hits = two_sites
    outcomes = []
    async with Resolver([CaresBackend([nameserver])]) as resolver:
        connector = aiohttp.TCPConnector(resolver=AiohttpResolver(resolver, policy=POLICY), use_dns_cache=False,
                                         force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(10):
                try:
                    async with session.get(f"http://rebind.attacker.test:{port}/") as response:
                        outcomes.append(await response.text())
                except aiohttp.ClientConnectorDNSError as error:
                    # the outcome alternates (answer, refusal): pytest.raises cannot express it
                    assert isinstance(error.os_error.__cause__, AddressRefused)  # noqa: PT017
                    outcomes.append("refused")
    assert hits[INTERNAL] == 0
    assert outcomes == [PUBLIC, "refused"] * 5
    assert server.answered == [PUBLIC, INTERNAL] * 5


async def test_httpx_never_connects_to_the_rebound_address(rebinding_dns, two_sites):
    server, nameserver = rebinding_dns
    port, hits = two_sites
    outcomes = []
    async with Resolver([CaresBackend([nameserver])]) as resolver:
        transport = AsyncResolveTransport(resolver, policy=POLICY,
                                          limits=httpx.Limits(max_keepalive_connections=0))
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(10):
                try:
                    outcomes.append((await client.get(f"http://rebind.attacker.test:{port}/")).text)
                except httpx.ConnectError:
                    outcomes.append("refused")
    assert hits[INTERNAL] == 0
    assert outcomes == [PUBLIC, "refused"] * 5
    assert server.answered == [PUBLIC, INTERNAL] * 5
