"""The thin async transport: one query to one server, over UDP (TCP when truncated).

Every UDP query uses a fresh socket bound to a random source port and a random
16-bit ID (RFC 5452). A datagram is accepted only if it comes from the server's
address and port, carries the query's ID and echoes its question (exactly, case
included, when 0x20 randomisation is on); anything else is counted and ignored, and
the wait goes on. A reply with the TC bit set is retried over TCP (RFC 7766) with the
usual two-byte length prefix. Queries carry EDNS0 with a 1232-byte buffer (RFC 6891).
Wire format is dnspython's.
"""

from __future__ import annotations

import asyncio
import errno
import secrets
import socket
import struct
import time
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype

from .servers import ServerAddr

_IN = dns.rdataclass.IN
_TC = dns.flags.TC


class TransportError(Exception):
    """Base of the transport's failures (the engine turns them into next-server decisions)."""


class TransportTimeout(TransportError):
    """No matching response before the timeout."""


class TransportUnreachable(TransportError):
    """The network said no (ICMP unreachable, connection refused, no route...)."""


class TransportMalformed(TransportError):
    """The server answered, but with something unusable (unparsable, wrong question over TCP...)."""


@dataclass(slots=True)
class TransportStats:
    """Counters of one transport (for tests and benchmarks)."""

    udp_queries: int = 0
    tcp_queries: int = 0
    truncated: int = 0
    ignored: int = 0  # datagrams from the wrong address/port, with the wrong ID or question
    malformed: int = 0
    timeouts: int = 0


def randomise_case(name: str) -> str:
    """0x20 encoding: flip the case of each letter at random."""
    bits = secrets.randbits(max(1, len(name)))
    out = []
    for i, char in enumerate(name):
        if char.isalpha() and (bits >> i) & 1:
            out.append(char.upper())
        else:
            out.append(char)
    return "".join(out)


def _random_port() -> int:
    return 1024 + secrets.randbelow(65536 - 1024)


class Transport:
    """Sends one query and returns the matching response ``Message``.

    :param edns_payload: advertised UDP buffer size (EDNS0); 0 disables EDNS.
    :param use_0x20: randomise the case of the query name and require it echoed exactly.
    :param allowed: predicate on destination IPs; a refused destination raises
        ``TransportUnreachable`` before any packet is sent (a lab's safety net).
    """

    def __init__(
        self,
        *,
        edns_payload: int = 1232,
        use_0x20: bool = False,
        allowed: object = None,
    ) -> None:
        self.edns_payload = edns_payload
        self.use_0x20 = use_0x20
        self._allowed = allowed
        self.stats = TransportStats()

    def make_query(self, qname: str, qtype: str) -> dns.message.QueryMessage:
        """A non-recursive query with a random ID (and, with 0x20, a random-case name)."""
        wire_name = randomise_case(qname) if self.use_0x20 else qname
        kwargs = {"use_edns": 0, "payload": self.edns_payload} if self.edns_payload else {"use_edns": False}
        return dns.message.make_query(
            wire_name, qtype, id=secrets.randbits(16), flags=0, **kwargs  # type: ignore[arg-type]
        )

    def matches(self, query: dns.message.Message, response: dns.message.Message) -> bool:
        """Same ID and the same question (case-sensitively under 0x20)."""
        if response.id != query.id or len(response.question) != 1:
            return False
        asked = query.question[0]
        got = response.question[0]
        if got.rdtype != asked.rdtype or got.rdclass != asked.rdclass:
            return False
        if self.use_0x20:
            return got.name.labels == asked.name.labels  # type: ignore[no-any-return]
        return got.name == asked.name  # type: ignore[no-any-return]

    async def query(self, server: ServerAddr, qname: str, qtype: str, timeout: float) -> dns.message.Message:
        """Ask ``server``; raise a ``TransportError`` subclass on failure."""
        ip = server[0]
        check = self._allowed
        if check is not None and not check(ip):  # type: ignore[operator]
            raise TransportUnreachable(f"refusing to send to {ip}: not a loopback address")
        query = self.make_query(qname, qtype)
        wire = query.to_wire()
        started = time.monotonic()
        response = await self._udp(server, query, wire, timeout)
        if response.flags & _TC:
            self.stats.truncated += 1
            remaining = timeout - (time.monotonic() - started)
            response = await self._tcp(server, query, wire, max(remaining, 0.05))
        return response

    # -- UDP -------------------------------------------------------------------------
    async def _udp(
        self, server: ServerAddr, query: dns.message.Message, wire: bytes, timeout: float
    ) -> dns.message.Message:
        loop = asyncio.get_running_loop()
        ip, port = server
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            _bind_random(sock, family)
            future: asyncio.Future[dns.message.Message] = loop.create_future()
            expected_id = query.id
            stats = self.stats
            saw_malformed = False

            def on_readable() -> None:
                nonlocal saw_malformed
                while not future.done():
                    try:
                        data, addr = sock.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        return
                    except OSError as exc:
                        future.set_exception(TransportUnreachable(f"{ip}#{port}: {exc}"))
                        return
                    if addr[1] != port or not _same_ip(addr[0], ip):
                        stats.ignored += 1
                        continue
                    if len(data) < 12 or struct.unpack_from("!H", data)[0] != expected_id:
                        stats.ignored += 1
                        continue
                    try:
                        response = dns.message.from_wire(data, ignore_trailing=True)
                    except (dns.exception.DNSException, ValueError, struct.error):
                        # right ID, unusable content: keep waiting for a good one (RFC 5452),
                        # but report "malformed" rather than "timeout" if none comes
                        stats.malformed += 1
                        saw_malformed = True
                        continue
                    if not self.matches(query, response):
                        stats.ignored += 1
                        continue
                    future.set_result(response)

            loop.add_reader(sock.fileno(), on_readable)
            try:
                try:
                    sock.sendto(wire, (ip, port))
                except OSError as exc:
                    raise TransportUnreachable(f"{ip}#{port}: {exc}") from None
                self.stats.udp_queries += 1
                handle = loop.call_later(max(timeout, 0.0), _expire, future)
                try:
                    return await future
                except TransportTimeout:
                    self.stats.timeouts += 1
                    if saw_malformed:
                        raise TransportMalformed(f"{ip}#{port}: malformed response") from None
                    raise
                finally:
                    handle.cancel()
            finally:
                loop.remove_reader(sock.fileno())
        finally:
            sock.close()

    # -- TCP -------------------------------------------------------------------------
    async def _tcp(
        self, server: ServerAddr, query: dns.message.Message, wire: bytes, timeout: float
    ) -> dns.message.Message:
        ip, port = server
        self.stats.tcp_queries += 1
        writer = None
        try:
            async with asyncio.timeout(timeout):
                try:
                    reader, writer = await asyncio.open_connection(ip, port)
                except OSError as exc:
                    raise TransportUnreachable(f"{ip}#{port} (TCP): {exc}") from None
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                data = await reader.readexactly(size)
        except TimeoutError:
            self.stats.timeouts += 1
            raise TransportTimeout(f"{ip}#{port} (TCP): timeout") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise TransportMalformed(f"{ip}#{port} (TCP): {exc}") from None
        finally:
            if writer is not None:
                writer.close()
        try:
            response = dns.message.from_wire(data, ignore_trailing=True)
        except (dns.exception.DNSException, ValueError, struct.error) as exc:
            self.stats.malformed += 1
            raise TransportMalformed(f"{ip}#{port} (TCP): malformed response: {exc}") from None
        if not self.matches(query, response):
            self.stats.ignored += 1
            raise TransportMalformed(f"{ip}#{port} (TCP): response does not match the query")
        return response


def _expire(future: asyncio.Future[dns.message.Message]) -> None:
    if not future.done():
        future.set_exception(TransportTimeout("timeout"))


def _same_ip(got: str, want: str) -> bool:
    if got == want:
        return True
    # IPv6 text forms may differ (zero compression, scope suffix)
    try:
        return socket.inet_pton(socket.AF_INET6, got.split("%")[0]) == socket.inet_pton(
            socket.AF_INET6, want.split("%")[0]
        )
    except OSError:
        return False


def _bind_random(sock: socket.socket, family: int) -> None:
    """Bind to an unpredictable source port (RFC 5452); the kernel picks after a few clashes."""
    host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(8):
        try:
            sock.bind((host, _random_port()))
            return
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
    sock.bind((host, 0))
