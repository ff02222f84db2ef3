"""An authoritative DNS server on asyncio (UDP and TCP) with fault injection.

The UDP path answers synchronously inside ``datagram_received`` (no task per
query) unless a delay fault is set; TCP connections are bounded by
``max_tcp_connections`` and each is read until the client closes it or
``tcp_idle_timeout`` passes.  Nothing a client sends can make the server
stop: every per-message failure is contained.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from .faults import Faults
from .malformed import FORGED, MALFORMED
from .responder import (
    Responder,
    Response,
    error_for_unparsable,
    max_udp_size,
    parse_query,
    render,
)
from .zones import ZoneSet, ZoneSource

log = logging.getLogger(__name__)

Address = tuple[str, int]


class QueryRecord(NamedTuple):
    """One message a server received.

    ``server`` is the receiving server's :attr:`AuthServer.name`, ``name`` the
    lower-cased query name with its final dot (``None`` if the message did not
    parse), ``type`` the query type as text (``"A"``), ``protocol``
    ``"udp"`` or ``"tcp"``.
    """

    server: str
    name: str | None
    type: str | None
    protocol: str


class AuthServer:
    """One authoritative server instance listening on ``host:port`` (UDP and TCP).

    *zones* is a :class:`ZoneSet` or a mapping of origin to zone text (each
    zone needs its SOA and apex NS).  Change :attr:`faults` at any time to
    inject faults.  Use ``async with AuthServer(...) as server`` or
    :meth:`start` / :meth:`stop`.

    ``port=0`` picks a free port that is free for both UDP and TCP.
    ``alt_host`` is the address the ``other_source`` fault answers from
    (default: the same host from another port).
    """

    def __init__(
        self,
        zones: ZoneSet | Mapping[str, ZoneSource] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str | None = None,
        faults: Faults | None = None,
        recursion_available: bool = False,
        upward_referral: dns.rrset.RRset | None = None,
        alt_host: str | None = None,
        query_log: list[QueryRecord] | None = None,
        record_queries: bool = True,
        max_tcp_connections: int = 64,
        max_delayed_replies: int = 1024,
        tcp_idle_timeout: float = 10.0,
    ) -> None:
        if zones is None:
            zones = ZoneSet()
        elif not isinstance(zones, ZoneSet):
            zones = ZoneSet.from_texts(zones)
        self.zones = zones
        self.host = host
        self.port = port
        self.name = name or host
        self.faults = faults or Faults()
        self.alt_host = alt_host
        self.record_queries = record_queries
        self.max_tcp_connections = max_tcp_connections
        self.max_delayed_replies = max_delayed_replies
        self.tcp_idle_timeout = tcp_idle_timeout
        self.responder = Responder(zones, recursion_available=recursion_available, upward_referral=upward_referral)
        self.query_count = 0
        """Messages received (UDP and TCP, including unparsable ones)."""
        self.queries: list[QueryRecord] = []
        """Every message received, in order (if ``record_queries``)."""
        self.on_udp_query: Callable[[bytes, Address], None] | None = None
        """Called with each UDP message and its sender before it is answered: what an
        observer of the server's traffic sees (the spoofing tests learn ports and IDs so)."""
        self._shared_log = query_log
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._alt_socket: socket.socket | None = None
        self._delayed: set[asyncio.TimerHandle] = set()
        self._connections: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"<AuthServer {self.name} {self.host}:{self.port} zones={[str(o) for o in self.zones.origins]}>"

    @property
    def address(self) -> Address:
        """``(host, port)`` the server listens on."""
        return (self.host, self.port)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._udp is not None

    def reset_counters(self) -> None:
        """Zero :attr:`query_count` and clear :attr:`queries`."""
        self.query_count = 0
        self.queries.clear()

    async def __aenter__(self) -> AuthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind UDP and TCP sockets and start serving.

        Raises :class:`OSError` if the address is taken (``EADDRINUSE``) or
        the port is privileged and we are not root (``EACCES``).
        """
        if self.running:
            return
        loop = asyncio.get_running_loop()
        for attempt in range(20):
            udp_sock = _bind(socket.SOCK_DGRAM, self.host, self.port)
            port = udp_sock.getsockname()[1]
            try:
                tcp_sock = _bind(socket.SOCK_STREAM, self.host, port)
            except OSError as exc:
                udp_sock.close()
                if self.port == 0 and exc.errno == errno.EADDRINUSE and attempt < 19:
                    continue  # the kernel's free UDP port is taken for TCP: pick another
                raise
            break
        self.port = port
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UDPProtocol(self), sock=udp_sock)
        tcp_sock.listen(self.max_tcp_connections)
        self._tcp = await asyncio.start_server(self._serve_tcp_connection, sock=tcp_sock)

    async def stop(self) -> None:
        """Stop serving and close every socket; pending delayed replies are discarded."""
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._alt_socket is not None:
            self._alt_socket.close()
            self._alt_socket = None
        await asyncio.sleep(0)  # let the transports' close callbacks run

    # -- processing -----------------------------------------------------

    def process(self, wire: bytes, protocol: str) -> tuple[bytes | None, bool]:
        """Handle one received message: returns ``(reply or None, send_from_alt_address)``."""
        self.query_count += 1
        query: dns.message.Message | None
        try:
            query = parse_query(wire)
        except Exception:  # noqa: BLE001 - any parse failure is the client's problem (dnspython raises many types)
            query = None
        self._record(query, protocol)
        faults = self.faults
        if faults.should_drop():
            return None, False
        if query is None:
            rcode = dns.rcode.FORMERR
            return error_for_unparsable(wire, rcode), False
        if query.flags & dns.flags.QR:
            return None, False  # never answer a response
        try:
            if faults.forge:
                forged = FORGED[faults.forge](query)
                wire_out = forged if isinstance(forged, bytes) else forged.to_wire()
            else:
                response = self._respond(query, faults)
                wire_out = self._render(response, query, protocol, faults)
        except Exception:  # a bug in here must not kill the server
            log.exception("%s: failed to answer query %r", self.name, query.question)
            wire_out = self._render(self.responder.error(query, dns.rcode.SERVFAIL), query, protocol, Faults())
        if faults.malformed:
            if faults.malformed is True:
                wire_out = wire_out[:14]
            else:
                wire_out = MALFORMED[faults.malformed](wire, wire_out, faults.rng)
        return wire_out, protocol == "udp" and faults.other_source

    def _record(self, query: dns.message.Message | None, protocol: str) -> None:
        if not self.record_queries:
            return
        if query is not None and query.question:
            question = query.question[0]
            record = QueryRecord(
                self.name,
                question.name.to_text().lower(),
                dns.rdatatype.to_text(question.rdtype),
                protocol,
            )
        else:
            record = QueryRecord(self.name, None, None, protocol)
        self.queries.append(record)
        if self._shared_log is not None:
            self._shared_log.append(record)

    def _respond(self, query: dns.message.Message, faults: Faults) -> Response:
        if faults.servfail:
            return self.responder.error(query, dns.rcode.SERVFAIL)
        if faults.refuse:
            return self.responder.error(query, dns.rcode.REFUSED)
        if faults.no_edns and query.edns >= 0:
            response = self.responder.error(query, dns.rcode.FORMERR)
            response.message.use_edns(False)
            return response
        response = self.responder.lame(query) if faults.lame else self.responder.respond(query)
        if faults.poison:
            section = getattr(response.message, faults.poison_section)
            section.extend(faults.poison_rrsets())
        message = response.message
        if faults.wrong_question and message.question:
            asked = message.question[0]
            wrong = dns.name.Name((b"x-wrong", *asked.name.labels))
            message.question = [dns.rrset.RRset(wrong, asked.rdclass, asked.rdtype)]
        if faults.wrong_id:
            message.id = (message.id + 1) & 0xFFFF
        return response

    def _render(self, response: Response, query: dns.message.Message, protocol: str, faults: Faults) -> bytes:
        if protocol == "udp":
            return render(response, max_udp_size(query), force_truncation=faults.truncate)
        return render(response, 65535)

    # -- UDP ------------------------------------------------------------

    def send_udp(self, data: bytes, addr: Address) -> None:
        """Send ``data`` to ``addr`` from the server's own address and port (a perfect spoofer)."""
        if self._udp is not None:
            self._udp.sendto(data, addr)

    def _datagram(self, wire: bytes, addr: Address) -> None:
        if self.on_udp_query is not None:
            self.on_udp_query(wire, addr)
        reply, from_alt = self.process(wire, "udp")
        if reply is None:
            return
        delay = self.faults.delay
        if delay > 0:
            if len(self._delayed) >= self.max_delayed_replies:
                return  # overloaded: drop, as a busy server would
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle

            def fire() -> None:
                self._delayed.discard(handle)
                self._send_udp(reply, addr, from_alt)

            handle = loop.call_later(delay, fire)
            self._delayed.add(handle)
        else:
            self._send_udp(reply, addr, from_alt)

    def _send_udp(self, reply: bytes, addr: Address, from_alt: bool) -> None:
        try:
            if from_alt:
                self._alternate_socket().sendto(reply, addr)
            elif self._udp is not None:
                self._udp.sendto(reply, addr)
        except OSError as exc:
            log.debug("%s: cannot reply to %s: %s", self.name, addr, exc)

    def _alternate_socket(self) -> socket.socket:
        if self._alt_socket is None:
            host = self.alt_host or self.host
            port = self.port if self.alt_host and self.alt_host != self.host else 0
            try:
                sock = _bind(socket.SOCK_DGRAM, host, port)
            except OSError:
                sock = _bind(socket.SOCK_DGRAM, host, 0)
            sock.setblocking(False)
            self._alt_socket = sock
        return self._alt_socket

    # -- TCP ------------------------------------------------------------

    async def _serve_tcp_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_tcp_connections:
            writer.close()
            return
        self._connections.add(task)
        try:
            if self.faults.tcp_reset:
                _reset(writer)
                return
            while True:
                prefix = await asyncio.wait_for(reader.readexactly(2), self.tcp_idle_timeout)
                wire = await asyncio.wait_for(reader.readexactly(int.from_bytes(prefix, "big")), self.tcp_idle_timeout)
                reply, _ = self.process(wire, "tcp")
                if reply is None or self.faults.tcp_silent:
                    continue
                if self.faults.delay > 0:
                    await asyncio.sleep(self.faults.delay)
                framed = len(reply).to_bytes(2, "big") + reply
                if self.faults.tcp_drip > 0:
                    for i in range(len(framed)):
                        writer.write(framed[i:i + 1])
                        await writer.drain()
                        await asyncio.sleep(self.faults.tcp_drip)
                    continue
                writer.write(framed)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass  # client closed, sent a partial message, or went idle
        except asyncio.CancelledError:
            pass  # server stopping
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: AuthServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.server._datagram(data, addr)
        except Exception:  # never let one datagram break the endpoint
            log.exception("%s: error handling datagram from %s", self.server.name, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: UDP error: %s", self.server.name, exc)


UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
"""Bytes of UDP receive buffer asked for: bursts of thousands of queries must not be dropped by the kernel."""


def _grow_receive_buffer(sock: socket.socket) -> None:
    force = getattr(socket, "SO_RCVBUFFORCE", None)  # Linux, root: above net.core.rmem_max
    for option in (force, socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_RECEIVE_BUFFER)
            return
        except OSError:
            continue


def _bind(kind: int, host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            _grow_receive_buffer(sock)
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
