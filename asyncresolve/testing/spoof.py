"""An off-path spoofer for tests: floods a resolver with forged answers while a slow lab
server makes it wait.

The spoofer watches the queries reaching one :class:`AuthServer` (what an attacker near
the server, or one who triggered the query, may learn) and, for each, sends ``per_query``
forged responses from the server's own address and port (a perfect source-address
spoofer) to the resolver. What it knows is set by ``mode``:

``"guess"``
    the source ports of *earlier* queries (c-ares's default keeps a few sockets for
    the channel's life); IDs guessed at random.
``"port"``
    the exact source port of this query; IDs guessed at random.
``"port+id"``
    the exact port and ID: only the 0x20 case of the name is unknown (the forgery
    spells it in lower case).

The forged answer is ``FORGED_ADDRESS`` for the name asked, AA set, TTL 300.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rrset

from .server import Address, AuthServer

FORGED_ADDRESS = "198.51.100.66"
MODES = ("guess", "port", "port+id")


@dataclass
class Spoofer:
    """Attach to ``server`` with :meth:`attach`; counts what it sent in :attr:`sent`."""

    server: AuthServer
    mode: str = "port"
    per_query: int = 400
    rng: random.Random = field(default_factory=lambda: random.Random(5452))
    sent: int = 0
    queries_seen: int = 0
    ports_seen: set[int] = field(default_factory=set)
    _earlier_ports: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")

    def attach(self) -> None:
        self.server.on_udp_query = self._on_query

    def detach(self) -> None:
        self.server.on_udp_query = None

    def _on_query(self, wire: bytes, addr: Address) -> None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - not a query this spoofer can answer, whatever dnspython raised
            return
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return
        self.queries_seen += 1
        self.ports_seen.add(addr[1])
        question = query.question[0]
        name = question.name.to_text().lower()
        forged = dns.message.make_response(query)
        forged.flags |= dns.flags.AA
        forged.flags &= ~dns.flags.RD
        forged.question = [dns.rrset.RRset(dns.name.from_text(name), question.rdclass, question.rdtype)]
        if question.rdtype == 1:
            forged.answer.append(dns.rrset.from_text(name, 300, "IN", "A", FORGED_ADDRESS))
        template = bytearray(forged.to_wire())
        ports = [addr[1]]
        if self.mode == "guess":
            ports = self._earlier_ports[-8:] or [self.rng.randrange(1024, 65536)]
        rng = self.rng
        for i in range(self.per_query):
            qid = query.id if self.mode == "port+id" else rng.randrange(65536)
            template[0:2] = qid.to_bytes(2, "big")
            self.server.send_udp(bytes(template), (addr[0], ports[i % len(ports)]))
            self.sent += 1
        self._earlier_ports.append(addr[1])
