"""``NativeBackend``: a stub resolver in pure Python on the native wire codec and a lean socket layer.

It asks the configured recursive servers (``nameservers=``, like ``CaresBackend``) and gives
the same ``Answer`` semantics: every record with its TTL, NXDOMAIN/NODATA with the SOA of
the authority section and its RFC 2308 negative TTL, the CNAME chain, TCP when a reply is
truncated, EDNS0, one hard deadline per query.

How it is fast:

* Queries come from a template (``asyncresolve.wire``): only the ID, the name (0x20
  applied) and the type are written per query.
* The usual reply (NOERROR, the asked A/AAAA records owned by the question name, at most an
  authoritative server's NS records and glue besides) becomes the ``Answer`` straight from
  the bytes (``usual_answer``; NS and glue an authoritative server repeats for every name are
  checked once per shape, ``_usual_tail``); other replies are read by the fast parser, and
  anything it declines goes to dnspython.
* The query name's wire form and its 0x20 case are made in one pass, without memo tables
  (``wire.name_to_wire_0x20``): in bulk work every name is new.
* A small pool of non-blocking UDP sockets per server, each connected to it, is watched with
  the loop's reader callbacks (``loop.add_reader``): no transport or protocol object per
  query, one ``send`` and one ``recv`` per datagram (no address to pass or to build), and the
  reply is turned into the ``Answer`` inside the callback.
* Retransmission timers are one deque per backend of 5 ms slots, each a dict of the queries
  whose first try expires in it (every first try has the same timeout, so slots come in
  order), swept by one timer; a query leaves its slot when it is answered, so nothing of it
  outlives its lookup (no work for the garbage collector's young generations). A first try
  whose deadline comes before its timeout (a bulk run's single try) waits in the slot just
  before the deadline, and only if it is still unanswered then goes to a heap for the exact
  time; retries, and slots that would come out of order, go to the heap.

Forgery resistance (RFC 5452): every socket is bound to a random port and replaced by a
fresh random-port socket after ``udp_max_queries`` queries; IDs are random (from the
OS's CSPRNG), the question's case is randomised (0x20, on by default) and a reply counts
only if it comes from the server's address and port (the kernel drops anything else: the
socket is connected), has QR set, opcode QUERY, the query's ID and its question byte for
byte. Anything else is counted and ignored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import heapq
import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.rcode
import dns.rdatatype

from .. import wire
from ..answer import Answer, direct_answer
from ..errors import (
    NetworkError,
    NoAnswer,
    NXDomain,
    ResolveError,
    ResolverClosed,
    ResolveTimeout,
    ServFail,
)
from ..records import CNAMERecord, Record, SOARecord, a_record, aaaa_record
from .base import Backend, NotMine, Outcome, Query

__all__ = ["NativeBackend", "NativeStats"]

SOURCE = "native"
UNSUPPORTED_TYPES = frozenset({"ANY", "AXFR", "IXFR", "OPT", "TSIG", "TKEY", "MAILA", "MAILB"})
_NS = 2
_CNAME = 5
_SOA = 6
_IN = 1
_SWEEP_GRANULARITY = 0.005
_TRUNCATED = object()
_codes: dict[str, int] = {}
_unpack_counts = struct.Struct("!HHH").unpack_from
_unpack_rr = struct.Struct("!HHIH").unpack_from
_unpack_ttl = struct.Struct("!I").unpack_from
# an answer record's first bytes in the usual reply: a pointer to the question name, the type, IN
_A_HEAD = b"\xc0\x0c\x00\x01\x00\x01"
_AAAA_HEAD = b"\xc0\x0c\x00\x1c\x00\x01"
_inet_ntoa = socket.inet_ntoa
_inet_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6
# the characters of names whose presentation text is their wire form's (lower case, nothing escaped)
_PLAIN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."


@dataclass(slots=True)
class NativeStats:
    """Counters of one backend (for tests, benchmarks and forgery checks)."""

    queries: int = 0
    udp_sent: int = 0
    retransmits: int = 0
    tcp_queries: int = 0
    truncated: int = 0
    ignored: int = 0  # datagrams from the wrong address, with the wrong ID or question, not a response
    malformed: int = 0
    fast_parsed: int = 0  # replies read without dnspython (by the usual-reply shortcut or the fast parser)
    usual: int = 0  # of those, replies the usual-reply shortcut turned into the Answer directly
    slow_parsed: int = 0
    sockets_opened: int = 0
    timeouts: int = 0


Server = tuple[str, int]


class _Pending:
    """One query in flight."""

    __slots__ = ("attempt", "express", "first", "future", "plain", "qid", "qname_wire", "qtype", "query",
                 "question", "server", "slot", "sock", "wire")

    def __init__(self, query: Query, qtype: int, future: asyncio.Future[Any] | Outcome) -> None:
        self.query = query
        self.qtype = qtype
        self.future = future
        #: started by ``begin``: nobody awaits it, so the backend finishes it (TCP included)
        self.express = False
        self.attempt = 0
        self.first = 0  # index of the first server asked (rotate)
        self.qid = 0
        self.qname_wire = b""
        self.question = b""
        #: the usual-reply shortcut may answer (an A or AAAA query of a plain lower-case absolute name)
        # (a name of these characters with an empty or too long label never gets a reply: name_to_wire refuses it)
        name = query.name
        self.plain = (qtype == 1 or qtype == 28) and name[-1:] == "." and not name.strip(_PLAIN_CHARS)
        self.wire = b""
        self.server: Server = ("", 0)
        self.sock: _Socket | None = None
        self.slot: dict[_Pending, int] | None = None  # the timer slot of its first try, while in it


class _Socket:
    """One UDP socket on a random port, shared by many queries (told apart by ID)."""

    __slots__ = ("fd", "pending", "retired", "sock", "used")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.pending: dict[int, _Pending] = {}
        self.used = 0
        self.retired = False


def _parse_server(server: str | tuple[str, int], port: int) -> Server:
    if isinstance(server, tuple):
        host, server_port = str(server[0]), int(server[1])
    else:
        text = str(server).strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            server_port = int(rest[1:]) if rest.startswith(":") else port
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            server_port = int(port_text)
        else:
            host, server_port = text, port
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"nameserver must be an IP address (port optional): {server!r}") from None
    if not 0 < server_port < 65536:
        raise ValueError(f"bad port in nameserver {server!r}")
    return str(address), server_port


def _code(rdtype: str) -> int:
    code = _codes.get(rdtype)
    if code is None:
        code = _codes[rdtype] = int(dns.rdatatype.from_text(rdtype))
    return code


def usual_answer(data: bytes, start: int, name: str, rdtype: str, qtype: int) -> Answer | None:
    """The ``Answer`` of the usual positive reply to an A or AAAA query, read straight from the bytes.

    The usual reply is NOERROR; its answer section holds only records owned by a pointer to
    the question name (offset 12), of the asked type and class IN; its authority section
    only NS records, its additional section only A and AAAA records (an authoritative
    server's referral data, which the answer does not use) and at most one OPT record (root
    owner, no options, no extended rcode bits). Every name there is checked by dnspython's
    rules (``_skip_name``; once per repeated shape of those sections, ``_usual_tail``) and
    every record's length against its type, so that the message is one dnspython reads.
    Anything else gives None, and the reply goes to the fast parser and ``outcome`` (then
    dnspython). The caller has checked the header (ID, QR, opcode
    QUERY, one question) and that the question echoes the query's byte for byte up to
    ``start``, and ``name`` must be the question name's lower-case presentation text
    (``_Pending.plain``). What it returns is what ``outcome(parse(data), ...)`` returns, which
    ``tests/test_native_usual.py`` checks on generated and mutated replies.
    """
    if data[3] & 0x0F:  # rcode
        return None
    ancount, nscount, arcount = _unpack_counts(data, 6)
    if not ancount:
        return None
    if qtype == 1:
        size, head = 4, _A_HEAD
    else:
        size, head = 16, _AAAA_HEAD
    n = len(data)
    p = start
    values: list[str] = []
    ttl = 0x7FFFFFFF
    for _ in range(ancount):
        end = p + 12 + size
        # owner: a pointer to the question name; the asked type, class IN, then the length
        if end > n or not data.startswith(head, p) or data[p + 10] or data[p + 11] != size:
            return None
        value = _inet_ntoa(data[p + 12:end]) if size == 4 else _inet_ntop(_AF_INET6, data[p + 12:end])
        rttl = _unpack_ttl(data, p + 6)[0]
        if rttl > 0x7FFFFFFF:
            rttl = 0
        if rttl < ttl:
            ttl = rttl
        if value not in values:
            values.append(value)
        p = end
    if (nscount or arcount) and not _usual_tail(data, p, start - 4, nscount, arcount):
        return None
    build = a_record if size == 4 else aaaa_record
    if len(values) == 1:
        return direct_answer(name, rdtype, (build(name, ttl, values[0]),), SOURCE, ttl)
    return direct_answer(name, rdtype, _built(build, name, ttl, values), SOURCE, ttl)


def _built(build: Any, name: str, ttl: int, values: list[str]) -> tuple[Record, ...]:
    # apart from ``usual_answer``: a comprehension there made three closure cells per reply
    return tuple([build(name, ttl, value) for value in values])


# Verdicts of ``_usual_tail`` on the tails an authoritative server repeats (see there).
_tail_verdicts: dict[tuple[bytes, int, int], tuple[int, ...]] = {}
_TAIL_VERDICTS = 1024  # entries kept (then all dropped)
_TAIL_BYTES = 512  # longer tails are checked every time


def _usual_tail(data: bytes, p: int, qend: int, nscount: int, arcount: int) -> bool:
    """Whether the authority and additional sections from ``p`` are what ``usual_answer``
    allows there (NS records, then A/AAAA glue and one plain OPT) and dnspython reads them;
    ``qend`` is where the question name ends.

    An authoritative server sends the same bytes there for every name of one shape (NSD:
    its NS record and the glue, whose pointers lead into the question name), so a verdict is
    kept, keyed by those bytes, their offset, ``qend`` and the counts. It depends on nothing
    else except the bytes before ``p`` that its names' pointers lead to. A verdict is kept only
    when those are all label boundaries of the question name (the name there is then the rest
    of the question name, whatever its letters: the question was checked label by label), and
    a later reply reuses it only when they are label boundaries of its own question name too.
    Otherwise (or on no verdict) the whole check runs: the answer is the same either way.
    """
    tail = data[p:]
    key = None
    if len(tail) <= _TAIL_BYTES:
        key = (tail, p, (qend << 32) | (nscount << 16) | arcount)
        known = _tail_verdicts.get(key)
        if known is not None:
            return _label_boundaries(data, known)
    before: list[int] = []  # pointer targets before p
    if not _check_tail(data, p, nscount, arcount, before):
        return False
    if key is not None:
        needed = tuple(sorted(set(before)))
        if (not needed or (needed[0] >= 12 and needed[-1] < qend)) and _label_boundaries(data, needed):
            if len(_tail_verdicts) >= _TAIL_VERDICTS:
                _tail_verdicts.clear()
            _tail_verdicts[key] = needed
    return True


def _label_boundaries(data: bytes, offsets: tuple[int, ...]) -> bool:
    """Whether ``offsets`` (ascending, all inside the question name) start labels of it."""
    q = 12
    for target in offsets:
        while q < target:
            q += data[q] + 1
        if q != target:
            return False
    return True


def _check_tail(data: bytes, p: int, nscount: int, arcount: int, before: list[int]) -> bool:
    """The whole check of ``_usual_tail``; the pointer targets before ``p`` go to ``before``."""
    n = len(data)
    floor = p
    opt = False
    for index in range(nscount + arcount):
        q = _skip_name(data, p, n, floor, before)
        if q < 0 or q + 10 > n:
            return False
        rtype, rclass, _, rdlen = _unpack_rr(data, q)
        end = q + 10 + rdlen
        if end > n:
            return False
        if index < nscount:  # authority: NS records only
            if rtype != 2 or rclass != 1 or _skip_name(data, q + 10, end, floor, before) != end:
                return False
        elif rtype == 41:  # one OPT: root owner, no options, no extended rcode bits
            if opt or q != p + 1 or rdlen or data[q + 4]:
                return False
            opt = True
        elif rclass != 1 or rdlen != (4 if rtype == 1 else 16 if rtype == 28 else -1):
            return False
        p = end
    return True


def _skip_name(data: bytes, p: int, limit: int, floor: int, before: list[int]) -> int:
    """The offset after the name at ``p`` (its first segment ending by ``limit``), or -1 where
    dnspython would reject it: the rules of ``wire.parse`` (pointers strictly backwards from
    the previous one, at most 16 hops, the labels pointed at ending before the segment that
    pointed at them, no label types 0x40/0x80, at most 255 bytes), without the name's text.
    Pointer targets before ``floor`` are added to ``before``."""
    biggest = segment = p
    hops = 0
    total = 1
    after = -1
    while True:
        if p >= limit:
            return -1
        c = data[p]
        if c == 0:
            p += 1
            break
        if c < 64:
            p += 1 + c
            if p > limit:
                return -1
            total += c + 1
        elif c >= 192:
            if p + 2 > limit:
                return -1
            target = ((c & 0x3F) << 8) | data[p + 1]
            if after < 0:
                after = p + 2
            if target >= biggest:
                return -1
            hops += 1
            if hops > 16:
                return -1
            if target < floor:
                before.append(target)
            biggest = target
            limit = segment
            p = segment = target
        else:
            return -1
    if total > 255:
        return -1
    return after if after >= 0 else p


def outcome(response: wire.WireResponse, name: str, rdtype: str, qtype: int) -> Answer | ResolveError:
    """The ``Answer`` or error a stub reply means for (``name``, ``rdtype``).

    The answer is the records of the asked type owned by the end of the CNAME chain that
    starts at ``name`` (records owned by other names are not returned); NXDOMAIN and NODATA
    carry the authority section's SOA (the first, as c-ares takes it) and
    ``ttl`` = min(SOA TTL, SOA MINIMUM). A CNAME loop or a chain longer than 16 is
    ``ServFail``; any rcode but NOERROR and NXDOMAIN is ``ServFail`` with that rcode.
    """
    rcode = response.rcode()
    if rcode != 0 and rcode != 3:
        # the ignore below: dnspython types it Rcode, takes any int
        return ServFail(name=name, rdtype=rdtype, source=SOURCE, rcode=dns.rcode.to_text(rcode))  # type: ignore[arg-type]
    answer = response.answer
    if rcode == 0 and len(answer) == 1:  # the usual reply: one RRset of the name and type asked
        only = answer[0]
        if only[0] == name and only[1] == qtype and only[2] == _IN:
            return Answer(name, rdtype, wire.records(only), SOURCE)
    cnames: dict[str, wire.RRset] | None = None
    matching: list[wire.RRset] = []
    for rrset in response.answer:
        if rrset[2] != _IN:
            continue
        if rrset[1] == qtype:
            matching.append(rrset)
        elif rrset[1] == _CNAME:
            if cnames is None:
                cnames = {}
            cnames.setdefault(rrset[0], rrset)
    target = name
    chain: list[CNAMERecord] = []
    if cnames:
        while target in cnames:
            link = cnames[target]
            record = CNAMERecord(target, link[3], link[4][0])
            chain.append(record)
            target = record.target
            if len(chain) > 16 or target == name or any(c.name == target for c in chain):
                return ServFail(f"CNAME loop or chain too long at {target}", name=name, rdtype=rdtype,
                                source=SOURCE, rcode="SERVFAIL")
    found: list[Record] = []
    for rrset in matching:
        if rrset[0] == target:
            found.extend(wire.records(rrset))
    if rcode == 0 and found:
        if chain:
            return Answer(name, rdtype, found, SOURCE, cname_chain=chain, canonical_name=target)
        return Answer(name, rdtype, found, SOURCE)
    soa: SOARecord | None = None
    for rrset in response.authority:
        if rrset[1] == _SOA and rrset[2] == _IN:
            first = wire.records(rrset)[0]
            assert isinstance(first, SOARecord)
            soa = first
            break
    if rcode == 0 and soa is None and any(rrset[1] == _NS for rrset in response.authority):
        # a referral (a server that does not recurse, or a lame one): not "no such data"
        return ServFail(f"unusable reply for {name} {rdtype}: a referral, not an answer (the server does not "
                        "recurse)", name=name, rdtype=rdtype, source=SOURCE, rcode=None)
    kind = NXDomain if rcode == 3 else NoAnswer
    return kind(name=name, rdtype=rdtype, source=SOURCE, ttl=soa.negative_ttl if soa is not None else None,
                soa=soa, cname_chain=tuple(chain), canonical_name=target if chain else None)


class NativeBackend(Backend):
    """A stub resolver on the native codec and socket layer (see the module docstring).

    :param nameservers: IP addresses, each optionally with a port (``"127.0.0.1:5353"``,
        ``"[::1]:5353"``, ``("127.0.0.1", 5353)``); ``None`` reads the ``nameserver`` lines
        of ``resolv_conf`` at first use (in a worker thread).
    :param port: the port of nameservers given without one.
    :param timeout: first-try timeout per server, in seconds; it doubles at every round
        through the servers. The query's deadline always wins.
    :param tries: rounds through the servers.
    :param rotate: start each query at the next server instead of the first.
    :param edns_payload: EDNS0 UDP payload size advertised (1232); 0 sends no OPT record.
    :param use_0x20: randomise the case of the query name and require it echoed exactly.
    :param sockets: UDP sockets per server (each on its own random port, connected to the server).
    :param udp_max_queries: queries per socket before it is replaced by a fresh random-port one.
    :param receive_buffer: ``SO_RCVBUF`` of the sockets (replies come in bursts).
    """

    name = SOURCE
    honours_deadline = True

    def __init__(
        self,
        nameservers: Sequence[str | tuple[str, int]] | None = None,
        port: int = 53,
        *,
        timeout: float = 1.0,
        tries: int = 3,
        rotate: bool = False,
        edns_payload: int = 1232,
        use_0x20: bool = True,
        sockets: int = 4,
        udp_max_queries: int = 256,
        receive_buffer: int | None = 1 << 20,
        resolv_conf: str | os.PathLike[str] = "/etc/resolv.conf",
    ) -> None:
        if not timeout > 0 or tries < 1 or sockets < 1 or udp_max_queries < 1:
            raise ValueError("timeout must be > 0; tries, sockets and udp_max_queries >= 1")
        self._servers: list[Server] | None = (
            [_parse_server(s, port) for s in nameservers] if nameservers is not None else None
        )
        if self._servers is not None and not self._servers:
            raise ValueError("no nameservers")
        self._port = port
        self._resolv_conf = os.fspath(resolv_conf)
        self.timeout = timeout
        self.tries = tries
        self.rotate = rotate
        self.use_0x20 = use_0x20
        self.edns_payload = edns_payload
        self._pool_size = sockets
        self._max_uses = udp_max_queries
        self._rcvbuf = receive_buffer
        wire.load_rdata_classes()
        self._template = wire.QueryTemplate(recursion_desired=True, edns_payload=edns_payload)
        self._random = wire.RandomSource()
        self.stats = NativeStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pools: dict[Server, list[_Socket]] = {}  # per server: each socket is connected to one
        self._all: set[_Socket] = set()
        self._turn = itertools.count()
        self._first = itertools.count()
        # first tries: (slot number, {pending: attempt, or ~attempt for a deadline's slot}) in order;
        # a slot expires at number * granularity
        self._slots: collections.deque[tuple[int, dict[_Pending, int]]] = collections.deque()
        self._early: list[tuple[float, int, int, _Pending]] = []  # heap: expiries before the next try's
        self._seq = itertools.count()
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0
        self._tcp_tasks: set[asyncio.Task[None]] = set()  # the TCP retries of ``begin``'s lookups
        self._closed = False

    # -- the Backend protocol -------------------------------------------------------------
    def supports(self, rdtype: str) -> bool:
        return rdtype not in UNSUPPORTED_TYPES

    @property
    def nameservers(self) -> list[Server] | None:
        """The servers asked, as (address, port); None before the first query when they come
        from resolv.conf."""
        return list(self._servers) if self._servers is not None else None

    async def resolve(self, query: Query) -> Answer:
        if query.rdtype in UNSUPPORTED_TYPES:
            raise NotMine(query.rdtype)  # (for wrappers that do not ask ``supports`` first)
        if self._closed:
            raise ResolverClosed("the native backend is closed", name=query.name, source=SOURCE)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        if self._servers is None:
            await self._read_servers()
        qtype = _code(query.rdtype)
        future: asyncio.Future[Any] = loop.create_future()
        pending = _Pending(query, qtype, future)
        self.stats.queries += 1
        if self.rotate:
            # the ignore below: set by _read_servers above
            pending.first = next(self._first) % len(self._servers)  # type: ignore[arg-type]
        try:
            self._send(pending, loop.time())
            result = await future
            if result is _TRUNCATED:
                result = await self._tcp(pending)
                if self._closed:  # closed while the TCP exchange ran: nothing comes out of it
                    raise ResolverClosed("the native backend was closed", name=query.name, source=SOURCE)
        except asyncio.CancelledError:
            self._forget(pending)
            raise
        finally:
            self._finished(pending)
        if isinstance(result, Answer):
            return result
        raise result

    def begin(self, query: Query, outcome: Outcome, loop: asyncio.AbstractEventLoop) -> bool:
        """Send ``query`` now and hand its outcome to ``outcome`` (``asyncresolve.bulk``'s express
        lane): the lookup without a coroutine or a future of its own.

        ``outcome`` is called once, from a reader callback or a timer of the loop (it must not
        raise), with the ``Answer`` or the ``ResolveError`` that ``resolve`` would have
        returned or raised: a truncated reply is retried over TCP in a task of the backend's.
        False, with nothing sent, when the lookup cannot start this way (closed, another loop
        than the one the sockets belong to, servers not read yet, a type ``resolve`` refuses):
        ``resolve`` is the way then.
        """
        if self._closed or loop is not self._loop or self._servers is None or query.rdtype in UNSUPPORTED_TYPES:
            return False
        pending = _Pending(query, _code(query.rdtype), outcome)
        pending.express = True
        self.stats.queries += 1
        if self.rotate:
            pending.first = next(self._first) % len(self._servers)
        self._send(pending, loop.time())
        return True

    @staticmethod
    def _out_of_timers(pending: _Pending) -> None:
        """Out of its first try's timer slot (nothing keeps it there once it is settled), and
        its entries still queued in the heap stale."""
        slot = pending.slot
        if slot is not None:
            slot.pop(pending, None)
            pending.slot = None
        pending.attempt = -1

    @staticmethod
    def _finished(pending: _Pending) -> None:
        """The lookup is over (``resolve`` returned, or ``begin``'s outcome was delivered)."""
        NativeBackend._out_of_timers(pending)
        # a heap entry stays queued until it expires: it keeps neither the outcome nor the
        # message (the ignore: never read again)
        pending.future = pending.wire = None  # type: ignore[assignment]

    async def _tcp_then_deliver(self, pending: _Pending) -> None:
        query = pending.query
        try:
            result = await self._tcp(pending)
        except asyncio.CancelledError:  # aclose
            result = ResolverClosed("the native backend was closed", name=query.name, source=SOURCE)
        if self._closed:
            result = ResolverClosed("the native backend was closed", name=query.name, source=SOURCE)
        outcome = pending.future
        self._finished(pending)
        if not outcome.done():
            outcome.set_result(result)

    async def aclose(self) -> None:
        """Fail what is in flight with ``ResolverClosed`` and close the sockets."""
        self._closed = True
        self._teardown(ResolverClosed("the native backend was closed", source=SOURCE))

    # -- set-up ----------------------------------------------------------------------------
    async def _read_servers(self) -> None:
        from .cares import read_resolv_conf

        found = await asyncio.to_thread(read_resolv_conf, self._resolv_conf)
        if self._servers is None:
            self._servers = [_parse_server(s, self._port) for s in found]

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sockets and timers belong to one loop: a new loop gets fresh ones."""
        if self._loop is not None:
            self._teardown(ResolverClosed("the event loop changed", source=SOURCE))
        self._loop = loop

    def _teardown(self, error: ResolveError) -> None:
        for usock in list(self._all):
            for pending in list(usock.pending.values()):
                _fail(pending, error)
            usock.pending.clear()
            self._close_socket(usock)
        self._pools.clear()
        for _, slot in self._slots:
            for pending in slot:
                _fail(pending, error)
        self._slots.clear()
        self._early.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in self._tcp_tasks:
            task.cancel()

    def _open_socket(self, server: Server) -> _Socket:
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if self._rcvbuf:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
            _bind_random(sock, family, self._random)
            # Connected: the kernel delivers only the server's datagrams (from its address and
            # port) and send/recv carry no address; c-ares connects its UDP sockets too.
            sock.connect(server)
            usock = _Socket(sock)
            assert self._loop is not None
            self._loop.add_reader(usock.fd, self._on_readable, usock)
        except BaseException:
            sock.close()
            raise
        self._all.add(usock)
        self.stats.sockets_opened += 1
        return usock

    def _close_socket(self, usock: _Socket) -> None:
        if usock in self._all:
            self._all.discard(usock)
            with contextlib.suppress(Exception):  # the loop may be closed already
                assert self._loop is not None
                self._loop.remove_reader(usock.fd)
            usock.sock.close()

    def _grow_pool(self, server: Server) -> _Socket:
        """A new socket for a pool not yet full (made on first use)."""
        pool = self._pools.get(server)
        if pool is None:
            pool = self._pools[server] = []
        usock = self._open_socket(server)
        pool.append(usock)
        return usock

    def _replace(self, pool: list[_Socket], index: int, server: Server) -> _Socket:
        """A fresh random-port socket in place of one that carried its ``udp_max_queries``;
        the old one closes when its last query is answered."""
        usock = pool[index]
        usock.retired = True
        if not usock.pending:
            self._close_socket(usock)
        usock = pool[index] = self._open_socket(server)
        return usock

    # -- sending and timers ------------------------------------------------------------------
    def _send(self, pending: _Pending, now: float) -> None:
        servers = self._servers
        assert servers is not None
        attempt = pending.attempt
        server = servers[(pending.first + attempt) % len(servers)]
        pool = self._pools.get(server)
        try:
            if pool is not None and len(pool) == self._pool_size:
                index = next(self._turn) % len(pool)
                usock = pool[index]
                if usock.used >= self._max_uses:
                    usock = self._replace(pool, index, server)
            else:
                usock = self._grow_pool(server)
        except OSError as exc:  # no socket for this server (connect: unreachable, out of descriptors)
            self._settle(pending, NetworkError(f"{server[0]}#{server[1]}: {exc}", name=pending.query.name,
                                               rdtype=pending.query.rdtype, source=SOURCE))
            return
        usock.used += 1
        random = self._random
        by_id = usock.pending
        qid = random.u16()
        while qid in by_id:
            qid = random.u16()
        question = pending.question
        if not question or self.use_0x20:
            try:
                qname = (wire.name_to_wire_0x20(pending.query.name, random) if self.use_0x20
                         else wire.name_to_wire(pending.query.name))
            except ValueError as exc:
                self._settle(pending, ResolveError(str(exc), name=pending.query.name, source=SOURCE))
                return
            pending.qname_wire = qname
            pending.question = question = wire.question(qname, pending.qtype)
        pending.qid = qid
        pending.server = server
        pending.sock = usock
        pending.wire = message = self._template.render_question(qid, question)
        try:
            try:
                usock.sock.send(message)
            except ConnectionRefusedError:
                # the ICMP error of an earlier datagram, reported (and cleared) by this call
                usock.sock.send(message)
        except OSError as exc:
            self._settle(pending, NetworkError(f"{server[0]}#{server[1]}: {exc}", name=pending.query.name,
                                               rdtype=pending.query.rdtype, source=SOURCE))
            return
        usock.pending[qid] = pending
        self.stats.udp_sent += 1
        # the try's timeout doubles at every round through the servers
        expires = now + self.timeout * (1 << (attempt // len(servers)))
        deadline = pending.query.deadline
        slots = self._slots
        if not attempt:
            if deadline >= expires:
                number = -int(-expires // _SWEEP_GRANULARITY)  # rounded up: a slot expires at its end
                mark = 0  # the first try's attempt
            else:
                # the deadline comes first (a bulk run's one try): the slot before it, which
                # hands the query to the heap for the last milliseconds if it is still waiting
                number = int(deadline // _SWEEP_GRANULARITY)
                mark = ~0
            if not slots or slots[-1][0] <= number:  # slots stay in order
                if slots and slots[-1][0] == number:
                    slot = slots[-1][1]
                else:
                    slot = {}
                    slots.append((number, slot))
                slot[pending] = mark
                pending.slot = slot
                if self._sweeper is None or number * _SWEEP_GRANULARITY < self._sweep_at:
                    self._arm(number * _SWEEP_GRANULARITY)
                return
        heapq.heappush(self._early, (min(deadline, expires), next(self._seq), attempt, pending))
        self._arm(min(deadline, expires))

    def _arm(self, when: float) -> None:
        if self._sweeper is not None:
            if when >= self._sweep_at:
                return
            self._sweeper.cancel()
        assert self._loop is not None
        self._sweep_at = when
        self._sweeper = self._loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        assert self._loop is not None
        now = self._loop.time()
        slots = self._slots
        while slots and slots[0][0] * _SWEEP_GRANULARITY <= now:
            _, slot = slots.popleft()
            for pending, mark in list(slot.items()):
                attempt = mark if mark >= 0 else ~mark
                if pending.attempt == attempt and not pending.future.done():
                    deadline = pending.query.deadline
                    if mark < 0 and now < deadline:  # a deadline's slot: the exact time from the heap
                        pending.slot = None
                        heapq.heappush(self._early, (deadline, next(self._seq), attempt, pending))
                    else:
                        self._expire(pending, now)
        early = self._early
        while early and early[0][0] <= now:
            _, _, attempt, pending = heapq.heappop(early)
            if pending.attempt == attempt and not pending.future.done():
                self._expire(pending, now)
        nxt = min(slots[0][0] * _SWEEP_GRANULARITY if slots else float("inf"),
                  early[0][0] if early else float("inf"))
        if nxt != float("inf"):
            self._arm(nxt)

    def _expire(self, pending: _Pending, now: float) -> None:
        """A try timed out: the next server (or the next round), or the deadline's error."""
        self._unregister(pending)
        servers = self._servers
        assert servers is not None
        tries_left = pending.attempt + 1 < self.tries * len(servers)
        if now < pending.query.deadline and tries_left:
            pending.attempt += 1
            self.stats.retransmits += 1
            self._send(pending, now)
            return
        self.stats.timeouts += 1
        query = pending.query
        self._settle(pending, ResolveTimeout(name=query.name, rdtype=query.rdtype, source=SOURCE))

    def _unregister(self, pending: _Pending) -> None:
        usock = pending.sock
        if usock is not None:
            if usock.pending.get(pending.qid) is pending:
                del usock.pending[pending.qid]
            if usock.retired and not usock.pending:
                self._close_socket(usock)

    def _forget(self, pending: _Pending) -> None:
        self._unregister(pending)
        pending.attempt = -1  # its timer entries are stale now

    def _settle(self, pending: _Pending, result: Any) -> None:
        future = pending.future
        if not future.done():
            future.set_result(result)
        if pending.express:
            self._finished(pending)

    # -- receiving -------------------------------------------------------------------------
    def _on_readable(self, usock: _Socket) -> None:
        recv = usock.sock.recv
        pending_by_id = usock.pending
        stats = self.stats
        while True:
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:
                continue  # an ICMP error (the server's port unreachable): the try's timer handles it
            except OSError:
                # closed meanwhile (a lookup settled here sent the next query, which replaced this
                # socket), or another ICMP error: the loop calls again if anything is left to read
                break
            if len(data) < 12:
                stats.ignored += 1
                continue
            pending = pending_by_id.get((data[0] << 8) | data[1])
            if (
                pending is None  # (the kernel checked the source: the socket is connected to the server)
                or data[2] & 0xF8 != 0x80  # QR set, opcode QUERY
                or data[4:6] != b"\0\1"
                or data[12:12 + len(pending.question)] != pending.question
            ):
                stats.ignored += 1
                continue
            del pending_by_id[pending.qid]
            if pending.plain and not data[2] & 0x02:  # the usual reply, inline (else _receive)
                query = pending.query
                answer = usual_answer(data, 12 + len(pending.question), query.name, query.rdtype, pending.qtype)
                if answer is not None:
                    stats.fast_parsed += 1
                    stats.usual += 1
                    future = pending.future
                    if not future.done():
                        future.set_result(answer)
                    if pending.express:
                        self._finished(pending)
                    continue
            self._receive(pending, data)
        if usock.retired and not usock.pending:
            self._close_socket(usock)

    def _receive(self, pending: _Pending, data: bytes) -> None:
        if data[2] & 0x02:  # TC: the whole answer over TCP
            self.stats.truncated += 1
            if not pending.express:
                self._settle(pending, _TRUNCATED)  # resolve() runs the TCP exchange in its own frame
                return
            self._out_of_timers(pending)  # no UDP retry or timeout from here on: _tcp keeps the deadline
            assert self._loop is not None
            task = self._loop.create_task(self._tcp_then_deliver(pending))
            self._tcp_tasks.add(task)
            task.add_done_callback(self._tcp_tasks.discard)
            return
        response = self._parse(data)
        if response is None:
            # unusable bytes that match our query: try the next server at once
            if self._loop is not None:
                self._expire(pending, self._loop.time())
            return
        query = pending.query
        self._settle(pending, outcome(response, query.name, query.rdtype, pending.qtype))

    def _parse(self, data: bytes) -> wire.WireResponse | None:
        try:
            response = wire.parse_fast(data)
            self.stats.fast_parsed += 1
            return response
        except wire.Decline:
            pass
        try:
            response = wire.parse_reference(data)
        except Exception:  # noqa: BLE001 - dnspython raises many types on hostile bytes: all mean malformed
            self.stats.malformed += 1
            return None
        self.stats.slow_parsed += 1
        return response

    # -- TCP ---------------------------------------------------------------------------------
    async def _tcp(self, pending: _Pending) -> Answer | ResolveError:
        query = pending.query
        ip, port = pending.server
        assert self._loop is not None
        remaining = query.deadline - self._loop.time()
        if remaining <= 0:
            return ResolveTimeout(name=query.name, rdtype=query.rdtype, source=SOURCE)
        self.stats.tcp_queries += 1
        writer = None
        try:
            async with asyncio.timeout_at(query.deadline):
                try:
                    reader, writer = await asyncio.open_connection(ip, port)
                except OSError as exc:
                    return NetworkError(f"{ip}#{port} (TCP): {exc}", name=query.name, rdtype=query.rdtype,
                                        source=SOURCE)
                writer.write(struct.pack("!H", len(pending.wire)) + pending.wire)
                await writer.drain()
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                data = await reader.readexactly(size)
        except TimeoutError:
            self.stats.timeouts += 1
            return ResolveTimeout(name=query.name, rdtype=query.rdtype, source=SOURCE)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            return NetworkError(f"{ip}#{port} (TCP): {exc}", name=query.name, rdtype=query.rdtype, source=SOURCE)
        finally:
            if writer is not None:
                writer.close()
        response = self._parse(data)
        if (
            response is None
            or response.id != pending.qid
            or response.qname != pending.qname_wire
            or response.qtype != pending.qtype
            or not response.flags & 0x8000
        ):
            return NetworkError(f"{ip}#{port} (TCP): unusable response", name=query.name, rdtype=query.rdtype,
                                source=SOURCE)
        return outcome(response, query.name, query.rdtype, pending.qtype)

    def __repr__(self) -> str:
        servers = ",".join(f"{ip}#{port}" for ip, port in self._servers) if self._servers else "resolv.conf"
        return f"<NativeBackend {servers}>"


def _fail(pending: _Pending, error: ResolveError) -> None:
    future = pending.future
    if future is not None and not future.done():
        with contextlib.suppress(RuntimeError):  # a future of a loop that is closed now
            future.set_exception(error)


def _bind_random(sock: socket.socket, family: int, random: wire.RandomSource) -> None:
    """Bind to an unpredictable port in 1024..65535 (RFC 5452); the kernel's pick after clashes."""
    host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(8):
        port = random.u16()
        if port < 1024:
            continue
        try:
            sock.bind((host, port))
            return
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
    sock.bind((host, 0))
