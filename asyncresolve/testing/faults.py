"""Fault injection for the test servers, switchable while the server runs."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import dns.rrset

DEFAULT_POISON = "www.victim.test. 300 IN A 198.51.100.66"
"""The out-of-bailiwick record :meth:`Faults.poison_with` uses by default."""


@dataclass
class Faults:
    """What a server does wrong.  Every attribute may be changed at any time.

    A fresh ``Faults()`` injects nothing.  Attributes:

    ``drop_rate``
        Fraction (0.0 - 1.0) of received queries that get no answer at all.
        Decided by :attr:`rng`, so a seeded lab drops the same queries every run.
    ``delay``
        Seconds to wait before answering (UDP and TCP).
    ``servfail`` / ``refuse``
        Answer every query with SERVFAIL / REFUSED (empty sections).
    ``truncate``
        Over UDP, answer every query with TC set and empty sections, forcing
        the client to retry over TCP (TCP still gets the full answer).
    ``wrong_id``
        Answer with a message ID that is not the query's.
    ``wrong_question``
        Answer with a question section naming another name
        (``x-wrong.`` prepended to the query name).
    ``malformed``
        Send bytes that are not a valid DNS message, with the query's ID: ``True``
        for the first 14 bytes of the real answer (a header and a question cut
        short), or the name of one of the 34 variants of
        :data:`asyncresolve.testing.malformed.MALFORMED` (pointer loops, counts
        beyond the data, huge RDLENGTH, random bytes...).
    ``forge``
        The name of a dishonest but parseable reply from
        :data:`asyncresolve.testing.malformed.FORGED` (the query echoed back, a
        reserved rcode, opcode UPDATE, a CH-class or off-chain record, a CNAME
        loop, a TTL of 2^31...), sent instead of the answer.
    ``no_edns``
        Answer FORMERR to every query that carries EDNS, like a server from before
        RFC 6891 (queries without EDNS are answered normally).
    ``tcp_reset`` / ``tcp_silent`` / ``tcp_drip``
        Over TCP: reset each connection as soon as it is accepted; read the query
        and never answer; or send the answer one byte every ``tcp_drip`` seconds.
    ``other_source``
        Over UDP, send the answer from another address (a second socket on
        the server's ``alt_host``), as an off-path spoofer would.
    ``poison``
        Records (zone-file lines or RRsets) stuffed into every answer's
        :attr:`poison_section` - typically out-of-bailiwick A records that a
        resolver must not cache.  See :meth:`poison_with`.
    ``lame``
        Answer non-authoritatively: AA clear, no answer, an upward referral to
        the root in the authority section - like a server listed as NS that
        does not serve the zone.
    """

    drop_rate: float = 0.0
    delay: float = 0.0
    servfail: bool = False
    refuse: bool = False
    truncate: bool = False
    wrong_id: bool = False
    wrong_question: bool = False
    malformed: bool | str = False
    forge: str | None = None
    no_edns: bool = False
    tcp_reset: bool = False
    tcp_silent: bool = False
    tcp_drip: float = 0.0
    other_source: bool = False
    poison: Sequence[str | dns.rrset.RRset] = ()
    poison_section: str = "additional"
    lame: bool = False
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def seed(self, seed: int | str | None) -> None:
        """Reseed :attr:`rng`, making ``drop_rate`` decisions reproducible."""
        self.rng.seed(seed)

    def reset(self) -> None:
        """Switch every fault off (the random generator keeps its state)."""
        for f in fields(self):
            if f.name != "rng":
                setattr(self, f.name, f.default)

    def poison_with(self, *records: str | dns.rrset.RRset, section: str = "additional") -> None:
        """Stuff *records* (default: :data:`DEFAULT_POISON`) into *section* of every answer."""
        if section not in ("answer", "authority", "additional"):
            raise ValueError(f"unknown section {section!r}")
        self.poison = list(records) or [DEFAULT_POISON]
        self.poison_section = section

    @property
    def active(self) -> bool:
        """True when any fault is switched on."""
        return self != Faults()

    def should_drop(self) -> bool:
        """Decide whether to drop the current query (consumes randomness only when dropping is on)."""
        rate = self.drop_rate
        if rate <= 0.0:
            return False
        return rate >= 1.0 or self.rng.random() < rate

    def poison_rrsets(self) -> list[dns.rrset.RRset]:
        """:attr:`poison` as RRsets."""
        return [r if isinstance(r, dns.rrset.RRset) else _rrset_from_line(r) for r in self.poison]


def _rrset_from_line(line: str) -> dns.rrset.RRset:
    """Parse ``"owner ttl IN TYPE rdata"`` into an RRset."""
    owner, ttl, rdclass, rdtype, rdata = line.split(None, 4)
    return dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, rdata)
