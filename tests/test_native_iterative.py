"""The iterative engine reads a fast-parsed ``MessageView`` exactly as it reads dnspython's ``Message``.

Every response the lab's servers give (root, TLD and zone servers, and the stub, for
every question of the native lab and with each fault) is handed to two identical
resolutions, one through ``MessageView`` and one through dnspython; the engine must
conclude the same thing: the same outcome text, the same answer or error, the same
next action and the same delegations cached.
"""

from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.rdatatype
from native_lab import LAB_QUESTIONS, LAB_ZONES

from asyncresolve.backends.iterative.engine import EngineConfig, Resolution, SendQuery, StepOutcome
from asyncresolve.backends.iterative.infra import Infrastructure
from asyncresolve.backends.iterative.servers import ServerStats
from asyncresolve.cache import TTLCache
from asyncresolve.testing import DNSLab
from asyncresolve.wire import Decline, MessageView, QueryTemplate, name_to_wire, parse_fast

FAULTS = [{}, {"servfail": True}, {"refuse": True}, {"lame": True}, {"truncate": True},
          {"poison": ["www.victim.test. 300 IN A 198.51.100.66"]}]


def conclusion(res: Resolution, outcome: StepOutcome) -> tuple:
    action = res.next_action()
    if isinstance(action, SendQuery):
        action = (action.zone, action.qname, action.qtype, action.server)
    done = res._done
    result = None
    if done is not None:
        if done.answer is not None:
            a = done.answer
            result = ("answer", [r.text for r in a.records], [r.ttl for r in a.records], a.canonical_name,
                      [c.text for c in a.cname_chain])
        else:
            e = done.error
            result = (type(e).__name__, getattr(e, "ttl", None), str(getattr(e, "soa", None)))
    return outcome.text, outcome.verdict, result, repr(action)


async def ask(address: tuple[str, int], data: bytes) -> bytes | None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.connect(address)
        await loop.sock_sendall(sock, data)
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), 2.0)
    except TimeoutError:
        return None
    finally:
        sock.close()


async def test_engine_concludes_the_same_from_a_view_and_from_dnspython():
    compared = 0
    template = QueryTemplate(recursion_desired=False)
    async with DNSLab(LAB_ZONES) as lab:
        servers = [lab.server_for("."), lab.server_for("test."), lab.server_for("example.test."), lab.stub]
        for faults in FAULTS:
            for server in servers:
                server.faults.reset()
                for key, value in faults.items():
                    if key == "poison":
                        server.faults.poison_with(*value)
                    else:
                        setattr(server.faults, key, value)
            for server in servers:
                for i, (name, rdtype) in enumerate(LAB_QUESTIONS):
                    qname = name.lower()
                    data = await ask(server.address, template.render(i, name_to_wire(qname),
                                                                      dns.rdatatype.from_text(rdtype)))
                    if data is None:
                        continue
                    try:
                        view = MessageView(parse_fast(data))
                    except Decline:
                        continue
                    reference = dns.message.from_wire(data, ignore_trailing=True)
                    results = []
                    for response in (view, reference):
                        # one fixed clock for both runs: hold-down times must not differ by the run's duration
                        infra = Infrastructure(lab.root_hints, cache=TTLCache(clock=lambda: 1000.0), port=lab.port,
                                               stats=ServerStats(clock=lambda: 1000.0))
                        res = Resolution(qname, rdtype, infra, EngineConfig(qname_minimisation=False))
                        step = res.next_action()
                        assert isinstance(step, SendQuery)
                        outcome = res.receive(response, step.server)  # type: ignore[arg-type]
                        cached = sorted((str(key), repr(getattr(entry, "value", entry)))
                                        for key, entry in infra.cache._entries.items())
                        results.append((conclusion(res, outcome), cached))
                    assert results[0] == results[1], (name, rdtype, faults, results)
                    assert "unusable" not in results[0][0][0]
                    compared += 1
    assert compared > len(LAB_QUESTIONS) * len(FAULTS) * 2


def _resolve_many(loop_factory) -> tuple[list[str], dict, bool, object]:
    from asyncresolve import Resolver
    from asyncresolve.backends.iterative import IterativeBackend

    async def run():
        async with DNSLab(LAB_ZONES) as lab:
            backend = IterativeBackend(root_hints=lab.root_hints, port=lab.port)
            resolver = Resolver([backend])
            answers = await asyncio.gather(*(resolver.resolve(f"n{i}.wild.example.test", "A") for i in range(40)))
            poller = backend.transport._poller
            waiting = dict(poller.waiting) if poller is not None else {}
            used_poller = poller is not None
            await resolver.aclose()
            return [a.addresses[0] for a in answers], waiting, used_poller, backend.transport._poller

    if loop_factory is None:
        return asyncio.run(run())
    return loop_factory(run())


def test_iterative_sockets_are_watched_and_released_on_asyncio_and_uvloop():

    import uvloop  # a dev dependency: missing, it fails the test
    for factory in (None, uvloop.run):
        addresses, waiting, used_poller, poller = _resolve_many(factory)
        assert addresses == ["192.0.2.99"] * 40
        assert used_poller == (factory is None)  # the epoll set on the selector loop only
        assert waiting == {}  # every per-query socket unwatched once answered
        assert poller is None  # the epoll set closed with the backend
