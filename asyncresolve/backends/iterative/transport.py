"""The thin async transport: one query to one server, over UDP (TCP when truncated).

Every UDP query uses a fresh socket bound to a random source port and a random
16-bit ID (RFC 5452). A datagram is accepted only if it comes from the server's
address and port, carries the query's ID and echoes its question (exactly, case
included, when 0x20 randomisation is on); anything else is counted and ignored, and
the wait goes on. A reply with the TC bit set is retried over TCP (RFC 7766) with the
usual two-byte length prefix. Queries carry EDNS0 with a 1232-byte buffer (RFC 6891).
Queries are dnspython's rendering of a query cut into a template (only ID, name and
type change). Responses are read by the native fast parser (``asyncresolve.wire``, held
identical to dnspython's reading by differential tests) and handed to the engine as a
``MessageView``; what it declines is parsed by ``dns.message.from_wire`` (a final answer
only up to its answer section: see ``Transport._parse``). On the
standard selector loop the sockets are watched through one epoll set of the transport's
own (registered once with ``add_reader``: one ``epoll_ctl`` per query instead of the
loop's reader bookkeeping); on other loops (uvloop) through their own datagram
transport, which measured faster there.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import errno
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype

from ... import wire
from .._fdwatch import EpollWatch
from .servers import ServerAddr
from .wirecheck import sections_hold_together

_IN = dns.rdataclass.IN
_TC = int(dns.flags.TC)  # a plain int: Flag.__rand__ is slow Python code
_TC_BYTE = dns.flags.TC >> 8  # in the first byte of the flags (header byte 2)
_AA_BYTE = dns.flags.AA >> 8
_QR_FLAG = int(dns.flags.QR)
_QTAIL = struct.Struct("!HH")  # QTYPE, QCLASS
_rdtypes: dict[str, int] = {}
_PARSE_IN_THREAD = 8192  # bytes of a TCP reply above which dnspython parses it off the loop


class TransportError(Exception):
    """Base of the transport's failures (the engine turns them into next-server decisions)."""


class TransportTimeout(TransportError):
    """No matching response before the timeout."""


class TransportUnreachable(TransportError):
    """The network said no (ICMP unreachable, connection refused, no route...)."""


class TransportMalformed(TransportError):
    """The server answered, but with something unusable (unparsable, wrong question over TCP...)."""


class _Question:
    """One query on the wire: its ID, name (as sent) and type, and its wire form."""

    __slots__ = ("name", "qid", "rdtype", "wire")

    def __init__(self, qid: int, name: dns.name.Name, rdtype: int, wire: bytes) -> None:
        self.qid = qid
        self.name = name
        self.rdtype = rdtype
        self.wire = wire


@dataclass(slots=True)
class TransportStats:
    """Counters of one transport (for tests and benchmarks)."""

    udp_queries: int = 0
    tcp_queries: int = 0
    truncated: int = 0
    ignored: int = 0  # datagrams from the wrong address/port, with the wrong ID or question
    malformed: int = 0
    timeouts: int = 0
    fast_parsed: int = 0  # responses read by the native fast parser (the rest by dnspython)


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


_random = wire.RandomSource()


def _random_port() -> int:
    """Uniform in 1024..65535 (rejection sampling on 16 bits of the OS's CSPRNG, read in blocks)."""
    while True:
        port = _random.u16()
        if port >= 1024:
            return port


class _WireName(dns.name.Name):
    """The query name as sent (0x20 applied), built on the wire form (``wire.name_to_wire``).

    The send path only needs ``to_wire()``, which returns the bytes at hand; dnspython's
    ``labels`` (for comparisons with a reply parsed by dnspython) are read from them only
    when asked. Building a ``dns.name.Name`` from text per query cost five times as much.
    """

    __slots__ = ("_labels", "_wire")
    _labels: tuple[bytes, ...] | None
    _wire: bytes

    def __init__(self, qname: str, use_0x20: bool) -> None:  # (Name.__init__ is not called)
        name_wire = wire.name_to_wire(qname)
        object.__setattr__(self, "_wire", wire.randomise_case(name_wire, _random) if use_0x20 else name_wire)
        object.__setattr__(self, "_labels", None)

    # the ignore below: a property over dns.name.Name's attribute, read-only like it
    @property
    def labels(self) -> tuple[bytes, ...]:  # type: ignore[override]
        labels = self._labels
        if labels is None:
            data = self._wire
            out = []
            p = 0
            while data[p]:
                out.append(data[p + 1:p + 1 + data[p]])
                p += 1 + data[p]
            out.append(b"")
            labels = tuple(out)
            object.__setattr__(self, "_labels", labels)
        return labels

    def to_wire(self, file: Any = None, compress: Any = None, origin: Any = None,
                canonicalize: bool = False) -> bytes | None:
        if file is None and compress is None and not canonicalize:
            return self._wire
        return dns.name.Name(self.labels).to_wire(file, compress, origin, canonicalize)


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
        allowed: Callable[[str], bool] | None = None,
    ) -> None:
        self.edns_payload = edns_payload
        self.use_0x20 = use_0x20
        wire.load_rdata_classes()  # dnspython reads what the fast parser declines
        #: read replies with the native fast parser first (off: dnspython only, for comparisons)
        self.fast_parse = True
        #: on the selector loop, watch the per-query sockets through one epoll set of our own (Linux)
        self.use_poller = True
        self._poller: _Poller | None = None
        self._allowed = allowed
        self.stats = TransportStats()
        self.max_udp_reply = max(512, edns_payload)
        # dnspython's rendering of a query for "." (ID 0), cut into header and OPT tail
        template = self.make_query(".", "A")
        template.id = 0
        rendered = template.to_wire()
        self._header_rest = rendered[2:12]  # flags and section counts
        self._opt = rendered[12 + 1 + _QTAIL.size:]  # after the root name, QTYPE and QCLASS
        self._header_plain = rendered[2:10] + b"\0\0"  # ARCOUNT 0: no OPT (RFC 6891 §7 retry)

    def make_query(self, qname: str, qtype: str) -> dns.message.QueryMessage:
        """A non-recursive query with a random ID (and, with 0x20, a random-case name).

        (The send path does not build a ``Message``: see ``_question``; this is kept for
        callers that want the query as dnspython sees it.)
        """
        wire_name = randomise_case(qname) if self.use_0x20 else qname
        kwargs = {"use_edns": 0, "payload": self.edns_payload} if self.edns_payload else {"use_edns": False}
        return dns.message.make_query(
            wire_name, qtype, id=secrets.randbits(16), flags=0, **kwargs
        )

    def close(self) -> None:
        """Release the epoll set (the transport still works after: it makes a new one)."""
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.close()

    def matches(self, query: dns.message.Message, response: dns.message.Message) -> bool:
        """Same ID and the same question (case-sensitively under 0x20)."""
        asked = query.question[0]
        return self._answers(response, query.id, asked.name, asked.rdtype)

    def _answers(self, response: dns.message.Message, qid: int, name: dns.name.Name, rdtype: int) -> bool:
        if response.id != qid or len(response.question) != 1:
            return False
        if not response.flags & dns.flags.QR or response.opcode() != 0:
            return False  # the query echoed back, or another opcode: not a reply, keep waiting
        got = response.question[0]
        if got.rdtype != rdtype or got.rdclass != _IN:
            return False
        if self.use_0x20:
            return got.name.labels == name.labels
        return got.name == name  # type: ignore[no-any-return]  # dnspython's Name.__eq__ is unannotated

    def _fast_answers(self, response: wire.WireResponse, question: _Question) -> bool:
        """``_answers`` for a fast-parsed response: the question compared on the wire (0x20: exactly)."""
        if response.id != question.qid or not response.flags & _QR_FLAG or response.qname is None:
            return False  # (the fast parser declines every opcode but QUERY)
        if response.qtype != question.rdtype or response.qclass != _IN:
            return False
        sent = question.wire[12:12 + len(response.qname)]
        if self.use_0x20:
            return response.qname == sent
        return response.qname.lower() == sent.lower()

    def _question(self, qname: str, qtype: str, edns: bool = True) -> _Question:
        """The query to send: a random ID, the name (0x20 applied) and its wire form.

        The wire is dnspython's rendering of a one-question query, cut into a template
        at construction (header flags and counts, EDNS0 OPT record); only the ID, the
        name (``Name.to_wire``) and the type change from query to query. Building and
        rendering a ``Message`` per query cost more than the rest of the send path.
        """
        name = _WireName(qname, self.use_0x20)
        rdtype = _rdtypes.get(qtype)
        if rdtype is None:
            rdtype = _rdtypes[qtype] = int(dns.rdatatype.from_text(qtype))
        qid = _random.u16()  # the OS's CSPRNG, read in blocks
        with_opt = edns and bool(self._opt)
        wire = b"".join((
            qid.to_bytes(2, "big"), self._header_rest if with_opt else self._header_plain,
            cast(bytes, name.to_wire()), _QTAIL.pack(rdtype, _IN), self._opt if with_opt else b"",
        ))
        return _Question(qid, name, rdtype, wire)

    def _parse(self, data: bytes, question: _Question) -> dns.message.Message | None:
        """The response in ``data`` if it answers ``question`` (None: not ours, ignore it).

        Raises dnspython's exceptions when the data is unusable. A response that answers
        the question outright (AA, NOERROR, not truncated, an RRset of the name and type
        asked in the answer section: nearly every final answer) is parsed up to the end
        of its answer section only (dnspython, with NSCOUNT/ARCOUNT read as 0 and the
        rest ignored as trailing): the engine reads nothing else of such an answer, and
        the authority and additional sections cost two to three times the rest. Anything
        else is parsed whole. (So an EDNS extended RCODE is not seen on such an answer:
        with EDNS version 0 and no cookies sent, none can apply to it.)
        """
        try:
            if not self.fast_parse:
                raise wire.DECLINE
            fast = wire.parse_fast(data)
        except wire.Decline:
            pass
        else:
            self.stats.fast_parsed += 1
            if not self._fast_answers(fast, question):
                return None
            return wire.MessageView(fast)  # type: ignore[return-value]  # MessageView reads like a dns.message.Message
        if ((data[2] & _TC_BYTE) == 0 and (data[3] & 0x0F) == 0 and data[2] & _AA_BYTE
                and data[6:8] != b"\0\0" and sections_hold_together(data)):
            head = dns.message.from_wire(data[:8] + b"\0\0\0\0" + data[12:], ignore_trailing=True)
            if not self._answers(head, question.qid, question.name, question.rdtype):
                return None
            for rrset in head.answer:
                if rrset.rdtype == question.rdtype and rrset.rdclass == _IN and rrset.name == question.name:
                    return head
        response = dns.message.from_wire(data, ignore_trailing=True)
        if not self._answers(response, question.qid, question.name, question.rdtype):
            return None
        return response

    async def query(
        self, server: ServerAddr, qname: str, qtype: str, timeout: float, *, limit: float | None = None,
        edns: bool = True,
    ) -> dns.message.Message:
        """Ask ``server``; raise a ``TransportError`` subclass on failure.

        ``timeout`` bounds the UDP wait; a TCP retry (truncation) gets what is left of
        it, at least 50 ms, but never more than what is left of ``limit`` (seconds from
        now for the whole exchange: the caller's deadline).
        """
        ip = server[0]
        check = self._allowed
        if check is not None and not check(ip):
            raise TransportUnreachable(f"refusing to send to {ip}: not a loopback address")
        question = self._question(qname, qtype, edns)
        started = time.monotonic()
        response = await self._udp(server, question, timeout)
        if response.flags & _TC:
            self.stats.truncated += 1
            spent = time.monotonic() - started
            remaining = max(timeout - spent, 0.05)
            if limit is not None:
                remaining = min(remaining, limit - spent)
                if remaining <= 0:
                    self.stats.timeouts += 1
                    raise TransportTimeout(f"{ip}#{server[1]}: truncated, no time left for TCP")
            response = await self._tcp(server, question, remaining)
        return response

    # -- UDP -------------------------------------------------------------------------
    async def _udp(self, server: ServerAddr, question: _Question, timeout: float) -> dns.message.Message:
        loop = asyncio.get_running_loop()
        ip, port = server
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        future: asyncio.Future[dns.message.Message] = loop.create_future()
        exchange = _Exchange(self, server, question, future)
        transport: asyncio.DatagramTransport | None = None
        fd = -1
        try:
            sock.setblocking(False)
            _bind_random(sock, family)
            selector_loop = isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)
            if _HAVE_EPOLL and self.use_poller and selector_loop:
                # one epoll set of our own, watched by the loop: a socket per query costs one
                # epoll_ctl, not the loop's reader bookkeeping (measured on the selector loop;
                # on uvloop the nested epoll set added latency and its endpoint was faster)
                poller = self._poller
                if poller is None or poller.loop is not loop:
                    poller = self._poller = _Poller(loop, self._poller)
                fd = sock.fileno()
                poller.watch(fd, sock, exchange)
            elif selector_loop:
                # the standard selector loop: a reader callback is the cheapest there
                fd = sock.fileno()
                loop.add_reader(fd, _read_all, sock, exchange)
            else:
                # uvloop and other loops: their own datagram transport is cheaper than add_reader
                transport, _ = await loop.create_datagram_endpoint(exchange.itself, sock=sock)
            try:
                try:
                    if transport is None:
                        sock.sendto(question.wire, server)
                    else:
                        transport.sendto(question.wire, server)
                except OSError as exc:
                    raise TransportUnreachable(f"{ip}#{port}: {exc}") from None
                self.stats.udp_queries += 1
                handle = loop.call_later(max(timeout, 0.0), _expire, future)
                try:
                    return await future
                except TransportTimeout:
                    self.stats.timeouts += 1
                    if exchange.saw_malformed:
                        raise TransportMalformed(f"{ip}#{port}: malformed response") from None
                    raise
                finally:
                    handle.cancel()
            finally:
                if fd >= 0:
                    if _HAVE_EPOLL and self.use_poller and selector_loop:
                        self._poller.unwatch(fd)  # type: ignore[union-attr]  # a watched fd means the poller exists
                    else:
                        loop.remove_reader(fd)
        finally:
            if transport is not None:
                transport.close()  # closes the socket
            else:
                sock.close()

    # -- TCP -------------------------------------------------------------------------
    async def _tcp(self, server: ServerAddr, question: _Question, timeout: float) -> dns.message.Message:
        ip, port = server
        self.stats.tcp_queries += 1
        writer = None
        try:
            async with asyncio.timeout(timeout):
                try:
                    reader, writer = await asyncio.open_connection(ip, port)
                except OSError as exc:
                    raise TransportUnreachable(f"{ip}#{port} (TCP): {exc}") from None
                writer.write(struct.pack("!H", len(question.wire)) + question.wire)
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
            if len(data) > _PARSE_IN_THREAD:
                # thousands of records: parsed in a worker thread, the loop keeps running
                response = await asyncio.to_thread(dns.message.from_wire, data, ignore_trailing=True)
            else:
                response = dns.message.from_wire(data, ignore_trailing=True)
        except (dns.exception.DNSException, ValueError, struct.error) as exc:
            self.stats.malformed += 1
            raise TransportMalformed(f"{ip}#{port} (TCP): malformed response: {exc}") from None
        if not self._answers(response, question.qid, question.name, question.rdtype):
            self.stats.ignored += 1
            raise TransportMalformed(f"{ip}#{port} (TCP): response does not match the query")
        return response


class _Exchange(asyncio.DatagramProtocol):
    """One UDP query in flight: judges every datagram that arrives, settles ``future``.

    A datagram counts only if it comes from the server's address and port, carries the
    query's ID and parses into a response to the question asked; the others are counted
    (``ignored`` / ``malformed``) and the wait goes on (RFC 5452).
    """

    __slots__ = ("future", "question", "saw_malformed", "server", "transport")

    def __init__(self, transport: Transport, server: ServerAddr, question: _Question,
                 future: asyncio.Future[dns.message.Message]) -> None:
        self.transport = transport
        self.server = server
        self.question = question
        self.future = future
        self.saw_malformed = False

    def itself(self) -> _Exchange:
        """The protocol factory of its datagram endpoint (a bound method: a lambda in
        ``Transport._udp`` made ``exchange`` a closure cell on every query)."""
        return self

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.future.done():
            return
        stats = self.transport.stats
        ip, port = self.server
        if addr[1] != port or not _same_ip(addr[0], ip):
            stats.ignored += 1
            return
        if len(data) < 12 or int.from_bytes(data[:2], "big") != self.question.qid:
            stats.ignored += 1
            return
        if len(data) > self.transport.max_udp_reply:
            # larger than the buffer we advertised: no honest server sends it (and parsing
            # 64 KB of records on the loop would stall it)
            stats.malformed += 1
            self.saw_malformed = True
            return
        try:
            response = self.transport._parse(data, self.question)
        except (dns.exception.DNSException, ValueError, struct.error):
            # right ID, unusable content: keep waiting for a good one (RFC 5452),
            # but report "malformed" rather than "timeout" if none comes
            stats.malformed += 1
            self.saw_malformed = True
            return
        if response is None:
            stats.ignored += 1
            return
        self.future.set_result(response)

    def error_received(self, exc: Exception) -> None:
        if not self.future.done():
            ip, port = self.server
            self.future.set_exception(TransportUnreachable(f"{ip}#{port}: {exc}"))


def _read_all(sock: socket.socket, exchange: _Exchange) -> None:
    """Reader callback of the selector loop: every datagram queued, until one is accepted."""
    future = exchange.future
    while not future.done():
        try:
            data, addr = sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            exchange.error_received(exc)
            return
        exchange.datagram_received(data, addr)


_HAVE_EPOLL = hasattr(select, "epoll")


class _Poller:
    """The sockets of the queries in flight in one epoll set watched by the loop
    (``EpollWatch``): registering a fresh socket is one ``epoll_ctl``, and the sockets found
    ready are read."""

    def __init__(self, loop: asyncio.AbstractEventLoop, previous: _Poller | None) -> None:
        if previous is not None:
            previous.close()  # it belonged to another (probably closed) loop
        self.loop = loop
        self.waiting: dict[int, tuple[socket.socket, _Exchange]] = {}
        self._watch = EpollWatch(loop, self._ready, -1)

    def watch(self, fd: int, sock: socket.socket, exchange: _Exchange) -> None:
        self._watch.set(fd, True, False)
        self.waiting[fd] = (sock, exchange)

    def unwatch(self, fd: int) -> None:
        if self.waiting.pop(fd, None) is not None:
            self._watch.set(fd, False, False)

    def _ready(self, fd: int, _write_fd: int) -> None:
        entry = self.waiting.get(fd)
        if entry is not None:
            _read_all(*entry)

    def close(self) -> None:
        self._watch.close()
        self.waiting.clear()


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
