"""Turn a DNS query into an authoritative response (no I/O).

Everything is built with dnspython (:func:`dns.message.make_response`,
:meth:`dns.message.Message.to_wire`); no wire format is written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .zones import IN, Outcome, ZoneSet

MAX_CHAIN = 16
"""How many CNAME/DNAME links one response follows."""

UDP_DEFAULT_SIZE = 512
"""Largest UDP response to a query without EDNS (RFC 1035)."""

EDNS_PAYLOAD = 1232
"""The UDP payload size this server advertises (DNS flag day 2020)."""

_UNSUPPORTED_QTYPES = frozenset(
    {dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY, dns.rdatatype.MAILA, dns.rdatatype.MAILB}
)
_TRANSFER_QTYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
_ADDITIONAL_FOR = {
    dns.rdatatype.NS: "target",
    dns.rdatatype.MX: "exchange",
    dns.rdatatype.SRV: "target",
}

ROOT_REFERRAL = dns.rrset.from_text(".", 518400, "IN", "NS", "a.root-servers.lab.")
"""Default authority RRset of an upward referral (the ``lame`` fault)."""


@dataclass
class Response:
    """A response message plus what the renderer must know about it."""

    message: dns.message.Message
    referral: bool = False


class Responder:
    """Answers queries from a :class:`ZoneSet` like an authoritative server.

    ``recursion_available`` only sets the RA bit (useful for a stub server
    that answers every zone); the responder never recurses.
    """

    def __init__(
        self,
        zones: ZoneSet,
        *,
        recursion_available: bool = False,
        edns_payload: int = EDNS_PAYLOAD,
        upward_referral: dns.rrset.RRset | None = None,
    ) -> None:
        self.zones = zones
        self.recursion_available = recursion_available
        self.edns_payload = edns_payload
        self.upward_referral = upward_referral or ROOT_REFERRAL

    def skeleton(self, query: dns.message.Message) -> dns.message.Message:
        """An empty response to *query* (ID, question, RD, OPT echoed)."""
        response = dns.message.make_response(
            query, recursion_available=self.recursion_available, our_payload=self.edns_payload
        )
        if query.edns >= 0 and query.ednsflags & dns.flags.DO:
            response.ednsflags |= dns.flags.DO  # RFC 3225: the DO bit is copied
        return response

    def error(self, query: dns.message.Message, rcode: dns.rcode.Rcode) -> Response:
        """An empty response with *rcode*."""
        response = self.skeleton(query)
        response.set_rcode(rcode)
        return Response(response)

    def respond(self, query: dns.message.Message) -> Response:
        """The response to a parsed *query*."""
        if query.opcode() != dns.opcode.QUERY:
            return self.error(query, dns.rcode.NOTIMP)
        if len(query.question) != 1:
            return self.error(query, dns.rcode.FORMERR)
        if query.edns > 0:  # RFC 6891 section 6.1.3
            response = self.skeleton(query)
            response.set_rcode(dns.rcode.BADVERS)
            return Response(response)
        question = query.question[0]
        if question.rdclass != IN:
            return self.error(query, dns.rcode.REFUSED)
        if question.rdtype in _UNSUPPORTED_QTYPES:
            return self.error(query, dns.rcode.FORMERR)
        if question.rdtype in _TRANSFER_QTYPES:
            return self.error(query, dns.rcode.REFUSED)
        return self._answer(query, question.name, question.rdtype)

    def lame(self, query: dns.message.Message) -> Response:
        """A non-authoritative upward referral (AA clear, root NS in authority)."""
        response = self.skeleton(query)
        response.authority.append(self.upward_referral)
        return Response(response, referral=True)

    def _answer(self, query: dns.message.Message, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> Response:
        response = self.skeleton(query)
        zone = self.zones.find(qname, parent_side=qtype == dns.rdatatype.DS)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return Response(response)
        response.flags |= dns.flags.AA
        seen = {qname}
        name = qname
        for step in range(MAX_CHAIN + 1):
            result = zone.lookup(name, qtype)
            outcome = result.outcome
            if outcome is Outcome.REFERRAL:
                if step == 0:
                    response.flags &= ~dns.flags.AA
                    response.authority.extend(result.authority)
                    response.additional.extend(result.additional)
                    return Response(response, referral=True)
                break  # the chain leads into a delegated zone: the client continues from here
            _extend_unique(response.answer, result.answer)
            if outcome is Outcome.ANSWER:
                self._add_additional(response, result.answer)
                break
            if outcome in (Outcome.NXDOMAIN, Outcome.NODATA):
                response.authority.extend(result.authority)
                if outcome is Outcome.NXDOMAIN:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                break
            if outcome is Outcome.YXDOMAIN:
                response.set_rcode(dns.rcode.YXDOMAIN)
                break
            # CNAME or DNAME: follow the target if this server serves it.
            target = result.target
            assert target is not None
            if target in seen or step == MAX_CHAIN:
                break
            seen.add(target)
            next_zone = self.zones.find(target, parent_side=qtype == dns.rdatatype.DS)
            if next_zone is None:
                break
            zone, name = next_zone, target
        return Response(response)

    def _add_additional(self, response: dns.message.Message, answer: list[dns.rrset.RRset]) -> None:
        """Additional-section processing (RFC 1034 3.7): addresses of NS/MX/SRV targets we serve."""
        for rrset in answer:
            field = _ADDITIONAL_FOR.get(rrset.rdtype)
            if field is None:
                continue
            for rdata in rrset:
                target = getattr(rdata, field)
                zone = self.zones.find(target)
                if zone is not None:
                    _extend_unique(response.additional, zone.addresses(target))


def _extend_unique(section: list[dns.rrset.RRset], rrsets: list[dns.rrset.RRset]) -> None:
    for rrset in rrsets:
        if not any(existing is rrset for existing in section):
            section.append(rrset)


def max_udp_size(query: dns.message.Message | None) -> int:
    """The largest UDP response *query* accepts: 512 without EDNS, else its buffer size."""
    if query is None or query.edns < 0:
        return UDP_DEFAULT_SIZE
    return max(UDP_DEFAULT_SIZE, min(query.payload, 65535))


def render(response: Response, max_size: int, *, force_truncation: bool = False) -> bytes:
    """Wire format of *response* within *max_size* bytes.

    If the response does not fit, optional additional data is dropped first
    (except the glue of a referral, RFC 9471); if it still does not fit - or
    *force_truncation* is set - the answer goes out with TC set and only
    the question (and OPT).
    """
    message = response.message
    if not force_truncation:
        try:
            return message.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            pass
        if message.additional and not response.referral:
            saved = message.additional
            message.additional = []
            try:
                return message.to_wire(max_size=max_size)
            except dns.exception.TooBig:
                message.additional = saved
    message.answer, message.authority, message.additional = [], [], []
    message.flags |= dns.flags.TC
    return message.to_wire(max_size=max_size)


def parse_query(wire: bytes) -> dns.message.Message:
    """Parse *wire* as a query; raises :class:`dns.exception.DNSException` subclasses."""
    return dns.message.from_wire(wire, ignore_trailing=False, one_rr_per_rrset=False)


def error_for_unparsable(wire: bytes, rcode: dns.rcode.Rcode = dns.rcode.FORMERR) -> bytes | None:
    """A header-only error reply to bytes that did not parse, or ``None`` to stay silent.

    No reply to anything shorter than a header or with QR set (never answer a
    response: that is how reflection loops start).
    """
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    header = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
    header.flags = dns.flags.QR | (int.from_bytes(wire[2:4], "big") & dns.flags.RD)
    header.set_opcode(dns.opcode.from_flags(int.from_bytes(wire[2:4], "big")))
    header.set_rcode(rcode)
    return header.to_wire()
