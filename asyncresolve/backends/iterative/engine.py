"""The sans-I/O core of the iterative resolver: which server to ask what, and what a reply taught.

A ``Resolution`` resolves one (name, type) from what the ``Infrastructure`` knows (cached
delegations, name-server addresses, server statistics). It never touches a socket or
the event loop; a driver (``backend.py``) runs it::

    res = Resolution("www.example.", "A", infra)
    while True:
        action = res.next_action()
        if isinstance(action, SendQuery):      # ask action.server about action.qname/qtype
            res.deliver(action.server, Reply(response))  # or NoReply(), ExchangeFailed(why)
        elif isinstance(action, NeedSubResolution):      # addresses of a glueless NS name
            child = res.sub_resolution(action); ...; res.sub_resolved(action, result)
        else:                                    # Done: .answer or .error
            break

Rules implemented (RFC 1034 §5.3.3, RFC 2181 §5.4.1, RFC 2308, RFC 6672, RFC 8020, RFC 9156):

* start at the deepest cached zone cut; follow referrals downwards only; glue is used
  only for NS names in the bailiwick of the zone that sent the referral;
* NS names without usable addresses are resolved by sub-resolutions, bounded in depth,
  with loop detection;
* CNAME and DNAME chains are followed within the answer while they stay in the
  bailiwick of the zone asked, and re-resolved from the cache's closest cut otherwise,
  with a hop limit;
* NXDOMAIN and NODATA carry the zone's SOA and the RFC 2308 negative TTL;
* a reply that is not a response to the query sent (QR clear: the query echoed back;
  another opcode, class or question) is no evidence at all: ignored, never an answer,
  never a reason to call the server lame;
* a non-authoritative answer, a referral upwards or sideways, or REFUSED hold the
  server down for that zone for a short time that doubles with each failure in a row
  and is cleared by a good answer (see ``infra``); SERVFAIL and malformed replies fail
  the server for this step only; the next server is tried, and a zone's last server is
  probed again before the resolution gives up;
* FORMERR or NOTIMP to a query with EDNS: asked once more without EDNS (RFC 6891 §7);
* bounded work: at most ``max_ns_per_delegation`` NS names of a referral are kept (as
  BIND and unbound bound them), at most ``max_sub_lookups`` NS-address lookups per
  resolution tree, and nothing more is started once the query budget is spent;
* QNAME minimisation (RFC 9156) in relaxed mode: one label more per query (QTYPE A),
  falling back to the full name after an NXDOMAIN or an error on a minimised query;
* one shared budget of upstream queries for a resolution and all its sub-resolutions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ...answer import Answer
from ...errors import NoAnswer, NXDomain, ResolveError, ResolveTimeout, ServFail
from ...records import AAAARecord, ARecord, CNAMERecord, Record, SOARecord, from_rdata
from .infra import Delegation, Infrastructure, is_subdomain
from .servers import ServerAddr

SOURCE = "iterative"

_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME
_NS = dns.rdatatype.NS
_SOA = dns.rdatatype.SOA
_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_NOERROR = dns.rcode.NOERROR
_NXDOMAIN = dns.rcode.NXDOMAIN
_REFUSED = dns.rcode.REFUSED
_FORMERR = dns.rcode.FORMERR
_NOTIMP = dns.rcode.NOTIMP
_AA = dns.flags.AA
_QR = dns.flags.QR
_QUERY = dns.opcode.QUERY
_IN = dns.rdataclass.IN
_T = TypeVar("_T")


# -- actions -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SendQuery:
    """Ask ``server`` (an ``(ip, port)``) about ``qname``/``qtype`` on behalf of ``zone``."""

    server: ServerAddr
    zone: str
    qname: str
    qtype: str
    timeout: float
    minimised: bool = False
    edns: bool = True


@dataclass(frozen=True, slots=True)
class NeedSubResolution:
    """The addresses (``rdtype`` A or AAAA) of name server ``name`` are needed first."""

    name: str
    rdtype: str
    zone: str


@dataclass(frozen=True, slots=True)
class Done:
    """The resolution is over: exactly one of ``answer`` and ``error`` is set."""

    answer: Answer | None = None
    error: ResolveError | None = None


Action = SendQuery | NeedSubResolution | Done


# -- what an exchange gave (driver -> engine) ----------------------------------------------
@dataclass(frozen=True, slots=True)
class Reply:
    """The server's response, already matched to the query by the transport."""

    response: dns.message.Message


@dataclass(frozen=True, slots=True)
class NoReply:
    """No matching response came in time."""


@dataclass(frozen=True, slots=True)
class ExchangeFailed:
    """The server could not be used: unreachable, a malformed reply, a TCP failure..."""

    reason: str


Exchange = Reply | NoReply | ExchangeFailed


# -- what it did to the resolution (engine -> driver, trace) -------------------------------
class Verdict(enum.Enum):
    """The kind of step an exchange led to."""

    ANSWER = "answer"  # done: the records asked for
    NEGATIVE = "negative"  # done: NXDOMAIN or NODATA
    REFERRAL = "referral"  # down to a child zone
    DESCEND = "descend"  # a minimised name exists: one label more
    ALIAS = "alias"  # a CNAME/DNAME target, resolved from its own zone
    RETRY = "retry"  # the same server or zone asked differently (no EDNS, the full name)
    NEXT_SERVER = "next-server"  # lame, refused, an error rcode or unusable: another server
    TIMEOUT = "timeout"  # no reply in time: another server
    IGNORED = "ignored"  # not a response to the query sent: no evidence at all
    FAILED = "failed"  # the resolution is over with an error (a CNAME loop, too long a chain)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What ``Resolution.deliver`` made of an exchange: its ``verdict`` and a line of text."""

    verdict: Verdict
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a resolution, for ``--trace`` output.

    ``depth`` is 0 for the query asked, 1+ for sub-resolutions of NS addresses;
    ``server`` is ``None`` for steps that sent nothing (a sub-resolution starting,
    a CNAME restart); ``elapsed`` is the wait for that server, in seconds; ``verdict``
    the kind of step an exchange led to (``outcome`` says it in words).
    """

    depth: int
    zone: str
    server: ServerAddr | None
    qname: str
    qtype: str
    outcome: str
    elapsed: float | None = None
    verdict: Verdict | None = None  # None for steps that sent nothing

    def __str__(self) -> str:
        indent = "  " * self.depth
        where = f"@{self.server[0]}#{self.server[1]}" if self.server else "-"
        took = f" {self.elapsed * 1000:.1f} ms" if self.elapsed is not None else ""
        return f"{indent}[{self.zone}] {where} {self.qname} {self.qtype}: {self.outcome}{took}"


Tracer = Callable[[TraceStep], None]


@dataclass(slots=True)
class EngineConfig:
    """Limits and switches of the engine (the backend builds one from its arguments)."""

    qname_minimisation: bool = True
    minimisation_strict: bool = False
    max_queries: int = 64
    max_depth: int = 4
    max_cname_hops: int = 12
    max_attempts_per_server: int = 2
    max_minimise_labels: int = 10
    max_ns_per_delegation: int = 20
    max_sub_lookups: int = 24
    ipv4: bool = True
    ipv6: bool = True


@dataclass(slots=True)
class Budget:
    """Upstream queries sent by one resolution and all its sub-resolutions."""

    limit: int
    sent: int = 0
    lookups: int = 0  # NS-address sub-resolutions started

    @property
    def spent(self) -> bool:
        return self.sent >= self.limit


_rdtype_cache: dict[str, int] = {}


def _rdtype(text: str) -> int:
    value = _rdtype_cache.get(text)
    if value is None:
        value = _rdtype_cache[text] = int(dns.rdatatype.from_text(text))
    return value


def _text(name: dns.name.Name) -> str:
    return name.to_text().lower()


def _depth(name: str) -> int:
    """Number of labels of an absolute name, the root not counted."""
    if name == ".":
        return 0
    if "\\" not in name:
        return name.count(".")
    return len(dns.name.from_text(name)) - 1


def _ancestor(name: str, depth: int) -> str:
    """The ancestor of ``name`` with ``depth`` labels (not counting the root)."""
    if "\\" not in name:
        labels = name.split(".")  # "a.b.c." -> ["a", "b", "c", ""]
        return ".".join(labels[len(labels) - 1 - depth:]) if depth else "."
    parsed = dns.name.from_text(name)
    return _text(parsed.split(depth + 1)[1])


def _clamp_ttl(rrset: dns.rrset.RRset) -> dns.rrset.RRset:
    """RFC 2181 §8: a TTL with the top bit set is read as 0."""
    if rrset.ttl >= _TTL_LIMIT:
        rrset.ttl = 0
    return rrset


class _Parsed:
    """The sections of a response, with lower-case owner names."""

    __slots__ = ("_additional", "_authority", "answer", "answer_count", "foreign_class", "message")

    def __init__(self, message: dns.message.Message) -> None:
        # Honest responses hold a few dozen RRsets: past _MAX_RRSETS a section is cut, so
        # the work per response stays bounded whatever a server stuffs into it.
        self.answer: dict[tuple[str, int], dns.rrset.RRset] = {}
        self.foreign_class = False  # an answer-section record not of class IN
        for rrset in message.answer[:_MAX_RRSETS]:
            if rrset.rdclass != _IN:
                self.foreign_class = True
                continue
            _clamp_ttl(rrset)
            self.answer.setdefault((_text(rrset.name), rrset.rdtype), rrset)
        self.answer_count = len(message.answer)
        # The authority and additional sections are read only by referrals, negative answers
        # and CNAME chains that leave the zone: taken when first asked for, so a final answer
        # (nearly every response of a bulk run) never pays for them.
        self.message = message
        self._authority: list[tuple[str, dns.rrset.RRset]] | None = None
        self._additional: list[tuple[str, dns.rrset.RRset]] | None = None

    @property
    def authority(self) -> list[tuple[str, dns.rrset.RRset]]:
        if self._authority is None:
            self._authority = _owned(self.message.authority)
        return self._authority

    @property
    def additional(self) -> list[tuple[str, dns.rrset.RRset]]:
        if self._additional is None:
            self._additional = _owned(self.message.additional)
        return self._additional


def _owned(section: list[dns.rrset.RRset]) -> list[tuple[str, dns.rrset.RRset]]:
    """The class-IN RRsets of a section (at most _MAX_RRSETS), with their owner names."""
    return [(_text(r.name), _clamp_ttl(r)) for r in section[:_MAX_RRSETS] if r.rdclass == _IN]


class Resolution:
    """The state of resolving one (name, type); see the module docstring.

    :param qname: lower-case absolute name. :param qtype: type mnemonic.
    :param infra: shared infrastructure (cache, hints, server statistics).
    :param budget: shared with sub-resolutions; a new one of ``config.max_queries`` if None.
    :param stack: (name, type) of the resolutions this one is nested in (loop detection).
    :param tracer: called with each ``TraceStep`` (None: no trace).
    """

    # set by _enter, for each zone the resolution enters
    _dead: AbstractSet[ServerAddr]  # servers failed in this step
    _lookups_done: AbstractSet[tuple[str, str]]  # name server addresses looked up from this zone

    def __init__(
        self,
        qname: str,
        qtype: str,
        infra: Infrastructure,
        config: EngineConfig | None = None,
        *,
        budget: Budget | None = None,
        depth: int = 0,
        stack: frozenset[tuple[str, str]] = frozenset(),
        tracer: Tracer | None = None,
    ) -> None:
        self.qname = qname
        self.qtype = qtype
        self.infra = infra
        self.config = config or EngineConfig()
        self.budget = budget or Budget(self.config.max_queries)
        self.depth = depth
        # The sets below start as a shared empty frozenset and become sets of their own when
        # first added to, and the stack is built only for a sub-resolution: while the query is
        # on the wire, every object a resolution holds is one more for the garbage collector
        # to walk, and most resolutions never add to any of them.
        self._outer = stack  # the resolutions this one is nested in; ``stack`` adds this one
        self.tracer = tracer
        self._qtype_int = _rdtype(qtype)
        self.target = qname
        self.chain: list[CNAMERecord] = []
        self._seen_targets: AbstractSet[str] = _NOTHING  # CNAME targets entered (qname aside)
        self._done: Done | None = None
        self._pending: SendQuery | None = None
        self._answered_well = False
        self._failures: list[str] = []  # what went wrong, per server attempt, for the final error
        self._no_edns: AbstractSet[ServerAddr] = _NOTHING  # servers that refused EDNS (FORMERR/NOTIMP)
        self._enter(infra.closest_delegation(qname, parent_side=qtype == "DS"))

    # -- public API ------------------------------------------------------------------------
    @property
    def stack(self) -> frozenset[tuple[str, str]]:
        """(name, type) of this resolution and of those it is nested in (loop detection)."""
        return self._outer | {(self.qname, self.qtype)}

    @property
    def done(self) -> bool:
        return self._done is not None

    def next_action(self) -> Action:
        """What to do next: send a query, resolve a name server's address, or stop."""
        if self._done is not None:
            return self._done
        if self._pending is not None:
            return self._pending
        if self.budget.spent:
            # nothing more is started, sub-resolutions included, once the budget is spent
            return self._fail(ServFail(
                f"gave up on {self.qname} {self.qtype}: {self.budget.sent} upstream queries sent",
                name=self.qname, rdtype=self.qtype, source=SOURCE, rcode=None,
            ))
        servers = self._candidates()
        if servers:
            stats = self.infra.servers
            server = stats.choose(servers)
            assert server is not None
            self._attempts[server] = self._attempts.get(server, 0) + 1
            self.budget.sent += 1
            qname, qtype, minimised = self._step()
            timeout = stats.timeout_for(server)
            stats.started(server, timeout)
            self._pending = SendQuery(
                server, self.zone, qname, qtype, timeout, minimised, server not in self._no_edns,
            )
            return self._pending
        need = self._next_lookup()
        if need is not None:
            self.budget.lookups += 1
            self._trace(None, need.name, need.rdtype, "no address for this name server: resolving it")
            return need
        return self._give_up()

    def deliver(self, server: ServerAddr, exchange: Exchange, elapsed: float | None = None) -> StepOutcome:
        """What the exchange of the outstanding ``SendQuery`` with ``server`` gave."""
        if isinstance(exchange, Reply):
            return self.receive(exchange.response, server, elapsed)
        if isinstance(exchange, NoReply):
            return self.timeout(server, elapsed)
        return self.failed(server, exchange.reason, elapsed)

    def receive(
        self, response: dns.message.Message, server: ServerAddr, elapsed: float | None = None
    ) -> StepOutcome:
        """Digest ``response`` (already matched to the query by the transport)."""
        step = self._take_pending()
        self.infra.servers.finished(server)
        try:
            mismatch = _mismatch(response, step)
            if mismatch is not None:
                # not evidence of anything (an echo, a reply to another question): ignored
                self._failures.append("IGNORED")
                outcome = StepOutcome(Verdict.IGNORED, f"ignored: {mismatch}")
            else:
                zone = self.zone
                outcome = self._classify(response, server, step)
                if self._answered_well:
                    self.infra.clear_lame(zone, server)
        except (ValueError, KeyError, AttributeError, IndexError, dns.exception.DNSException) as exc:
            self._mark_dead(server)
            self._failures.append("FORMERR")
            outcome = StepOutcome(
                Verdict.NEXT_SERVER, f"unusable response ({type(exc).__name__}: {exc}), next server"
            )
        self._trace_outcome(server, step, outcome, elapsed)
        return outcome

    def timeout(self, server: ServerAddr, elapsed: float | None = None) -> StepOutcome:
        """No matching response from ``server`` in time."""
        step = self._take_pending()
        self.infra.servers.finished(server)
        self._failures.append("TIMEOUT")
        outcome = StepOutcome(Verdict.TIMEOUT, "timeout")
        self._trace_outcome(server, step, outcome, elapsed)
        return outcome

    def failed(self, server: ServerAddr, reason: str, elapsed: float | None = None) -> StepOutcome:
        """The server could not be used (unreachable, malformed reply, TCP failure...)."""
        step = self._take_pending()
        self.infra.servers.finished(server)
        self._mark_dead(server)
        self._failures.append("NETWORK")
        outcome = StepOutcome(Verdict.NEXT_SERVER, f"failed: {reason}")
        self._trace_outcome(server, step, outcome, elapsed)
        return outcome

    def sub_resolution(self, need: NeedSubResolution) -> Resolution:
        """A nested resolution for a name server's address, sharing budget and trace."""
        return Resolution(
            need.name, need.rdtype, self.infra, self.config,
            budget=self.budget, depth=self.depth + 1, stack=self.stack, tracer=self.tracer,
        )

    def sub_resolved(self, need: NeedSubResolution, result: Answer | ResolveError) -> None:
        """The outcome of a sub-resolution; addresses found go to the infrastructure cache."""
        self._lookups_done = _with(self._lookups_done, (need.name, need.rdtype))
        if isinstance(result, Answer):
            addresses = tuple(
                r.address for r in result.records if isinstance(r, (ARecord, AAAARecord))
            )
            self.infra.store_addresses(need.name, need.rdtype, addresses, result.ttl)
        elif isinstance(result, (NXDomain, NoAnswer)):
            ttl = result.ttl if result.ttl is not None else 60
            self.infra.store_addresses(need.name, need.rdtype, (), min(ttl, 300))
        elif isinstance(result, ServFail):
            # unresolvable now (a cycle, lame or dead servers): not asked again for a while
            self.infra.store_addresses(need.name, need.rdtype, (), _FAILED_LOOKUP_TTL)

    # -- zones and steps -----------------------------------------------------------------
    def _enter(self, delegation: Delegation) -> None:
        self.delegation = delegation
        self.zone = delegation.zone
        self._dead = _NOTHING
        self._lookups_done = _NOTHING
        self._minimise = self.config.qname_minimisation
        self._known_depth = _depth(self.zone)
        self._target_depth = _depth(self.target)
        self._attempts: dict[ServerAddr, int] = {}

    def _next_step(self) -> None:
        self._attempts = {}
        self._dead_step_reset()

    def _dead_step_reset(self) -> None:
        # failures other than lameness are per step (the server may do better on another name)
        self._dead = _NOTHING

    def _mark_dead(self, server: ServerAddr) -> None:
        self._dead = _with(self._dead, server)

    def _step(self) -> tuple[str, str, bool]:
        """The (qname, qtype, minimised) to send in the current zone."""
        if self._minimise and self.qtype != "DS":
            remaining = self._target_depth - self._known_depth
            if 1 < remaining <= self.config.max_minimise_labels:
                return _ancestor(self.target, self._known_depth + 1), "A", True
        return self.target, self.qtype, False

    def _candidates(self) -> list[ServerAddr]:
        infra = self.infra
        deleg = self.delegation
        port = infra.port
        max_attempts = self.config.max_attempts_per_server
        attempts = self._attempts
        dead = self._dead
        out: list[ServerAddr] = []
        held: list[ServerAddr] = []  # usable but held down as lame: the last resort
        seen: set[ServerAddr] = set()
        zone = self.zone
        for server in deleg.hints:
            usable = attempts.get(server, 0) < max_attempts and server not in dead
            if usable and infra.allowed(server[0]) and server not in seen:
                seen.add(server)
                (held if infra.is_lame(zone, server) else out).append(server)
        for name in deleg.ns_names[: self.config.max_ns_per_delegation]:
            for ip in self._addresses_of(name):
                server = (ip, port)
                if server in seen:
                    continue
                seen.add(server)
                if attempts.get(server, 0) >= max_attempts or server in dead or not infra.allowed(ip):
                    continue
                (held if infra.is_lame(zone, server) else out).append(server)
        if out:
            return out
        # Every server left is held down: probe them once each before giving up, so one
        # bad packet never makes a zone unresolvable for the whole hold-down.
        return [server for server in held if attempts.get(server, 0) == 0]

    def _addresses_of(self, name: str) -> tuple[str, ...]:
        glue = self.delegation.glue.get(name)
        found: tuple[str, ...] = ()
        config = self.config
        if glue:
            found = tuple(ip for ip in glue if (":" in ip and config.ipv6) or (":" not in ip and config.ipv4))
        if not found:
            if config.ipv4:
                found = self.infra.addresses(name, "A") or ()
            if config.ipv6:
                found = found + (self.infra.addresses(name, "AAAA") or ())
        return found

    def _next_lookup(self) -> NeedSubResolution | None:
        """A name server whose address is unknown and may be looked up, if any."""
        if self.depth >= self.config.max_depth:
            return None
        if self.budget.lookups >= self.config.max_sub_lookups:
            return None
        families = [t for t, on in (("A", self.config.ipv4), ("AAAA", self.config.ipv6)) if on]
        # out-of-zone names first: an in-zone name without glue can only loop back here
        names = sorted(self.delegation.ns_names[: self.config.max_ns_per_delegation],
                       key=lambda n: is_subdomain(n, self.zone))
        stack = self.stack
        for rdtype in families:
            for name in names:
                key = (name, rdtype)
                if key in self._lookups_done or key in stack:
                    continue
                if self.delegation.glue.get(name) or self.infra.addresses(name, rdtype) is not None:
                    continue
                if rdtype == "AAAA" and "A" in families and self.infra.addresses(name, "A"):
                    continue  # has IPv4 addresses already (tried and failed): not worth it
                return NeedSubResolution(name, rdtype, self.zone)
        return None

    def _take_pending(self) -> SendQuery:
        step = self._pending
        if step is None:
            raise RuntimeError("no query is outstanding")
        self._pending = None
        return step

    # -- classification --------------------------------------------------------------------
    def _classify(self, response: dns.message.Message, server: ServerAddr, step: SendQuery) -> StepOutcome:
        rcode = response.rcode()
        zone = self.zone
        self._answered_well = False
        if rcode not in (_NOERROR, _NXDOMAIN):
            text = dns.rcode.to_text(rcode)
            if rcode in (_FORMERR, _NOTIMP) and step.edns and server not in self._no_edns:
                # RFC 6891 §7: a server that does not know EDNS; ask it once more without
                self._no_edns = _with(self._no_edns, server)
                self._attempts[server] = min(self._attempts.get(server, 1), self.config.max_attempts_per_server - 1)
                return StepOutcome(Verdict.RETRY, f"{text} to an EDNS query: retrying without EDNS")
            self._failures.append(text)
            if rcode == _REFUSED:
                self._mark_dead(server)
                hold = self.infra.mark_lame(zone, server)
                return StepOutcome(Verdict.NEXT_SERVER, f"{text}: lame for {zone} ({hold:g} s), next server")
            if step.minimised and not self.config.minimisation_strict:
                self._minimise = False
                self._next_step()
                return StepOutcome(
                    Verdict.RETRY, f"{text} to a minimised query: retrying with the full name (relaxed mode)"
                )
            self._mark_dead(server)
            return StepOutcome(Verdict.NEXT_SERVER, f"{text}, next server")
        authoritative = bool(response.flags & _AA)
        parsed = _Parsed(response)
        qtype = _rdtype(step.qtype)
        if parsed.foreign_class:
            self._mark_dead(server)
            self._failures.append("FORMERR")
            return StepOutcome(
                Verdict.NEXT_SERVER, "a record of another class in the answer section: unusable, next server"
            )

        # Follow CNAME/DNAME within the answer, in bailiwick only.
        name = step.qname
        chain: list[CNAMERecord] = []
        final = parsed.answer.get((name, qtype))
        if final is None and qtype != _CNAME:
            for _ in range(self.config.max_cname_hops):
                if not is_subdomain(name, zone):
                    break
                final = parsed.answer.get((name, qtype))
                if final is not None:
                    break
                link = self._link(parsed, name, zone)
                if link is None:
                    break
                chain.append(link)
                name = link.target
            if final is None and is_subdomain(name, zone):
                final = parsed.answer.get((name, qtype))

        if final is None and not chain and parsed.answer_count and rcode == _NOERROR and authoritative:
            # records, but none of the name asked nor of its chain: not an answer, nor NODATA
            self._mark_dead(server)
            self._failures.append("FORMERR")
            return StepOutcome(Verdict.NEXT_SERVER, "answer section unrelated to the question: unusable, next server")
        if final is not None or chain:
            if not authoritative:
                return self._lame(server, "non-authoritative answer")
            self._answered_well = True
            if step.minimised:
                return self._descend_minimised("exists")
            self.chain.extend(chain)
            if final is not None:
                return self._finish_answer(name, final)
            return self._chain_end(name, parsed, rcode)

        ns_rrset = next((r for owner, r in parsed.authority if r.rdtype == _NS), None)
        ns_owner = _text(ns_rrset.name) if ns_rrset is not None else None

        if rcode == _NXDOMAIN:
            if not authoritative:
                return self._lame(server, "non-authoritative NXDOMAIN")
            self._answered_well = True
            if step.minimised and not self.config.minimisation_strict:
                self._minimise = False
                self._next_step()
                return StepOutcome(Verdict.RETRY, "NXDOMAIN for a minimised name: asking the full name (relaxed mode)")
            return self._finish_negative(NXDomain, step.qname, parsed, server)

        if ns_rrset is not None and ns_owner is not None and ns_owner != zone and not authoritative:
            if is_subdomain(ns_owner, zone) and is_subdomain(step.qname, ns_owner):
                self._answered_well = True
                return self._referral(ns_owner, ns_rrset, parsed)
            way = "upward" if is_subdomain(zone, ns_owner) else "sideways"
            return self._lame(server, f"{way} referral to {ns_owner}")

        if authoritative:
            self._answered_well = True
            if step.minimised:
                return self._descend_minimised("exists, no data")
            return self._finish_negative(NoAnswer, step.qname, parsed, server)

        return self._lame(server, "non-authoritative empty answer")

    def _lame(self, server: ServerAddr, what: str) -> StepOutcome:
        zone = self.zone
        hold = self.infra.mark_lame(zone, server)
        self._mark_dead(server)
        self._failures.append("LAME")
        return StepOutcome(Verdict.NEXT_SERVER, f"{what}: lame for {zone} ({hold:g} s), next server")

    def _link(self, parsed: _Parsed, name: str, zone: str) -> CNAMERecord | None:
        """The CNAME at ``name``, or one synthesised from an in-bailiwick DNAME above it."""
        cname = parsed.answer.get((name, _CNAME))
        if cname is not None:
            return CNAMERecord(name, cname.ttl, _text(cname[0].target))
        for (owner, rdtype), rrset in parsed.answer.items():
            if rdtype == _DNAME and owner != name and is_subdomain(name, owner) and is_subdomain(owner, zone):
                target = _text(rrset[0].target)
                prefix = name[: len(name) - len(owner)] if owner != "." else name
                new = prefix + target if target != "." else prefix
                if len(new) > 254:
                    return None
                return CNAMERecord(name, rrset.ttl, new)
        return None

    def _descend_minimised(self, what: str) -> StepOutcome:
        self._known_depth += 1
        self._next_step()
        return StepOutcome(Verdict.DESCEND, f"{what} (minimised step), one label more")

    def _referral(self, child: str, ns_rrset: dns.rrset.RRset, parsed: _Parsed) -> StepOutcome:
        zone = self.zone
        # At most max_ns_per_delegation names are kept (BIND and unbound bound them too):
        # a referral listing thousands costs no more than one listing twenty.
        limit = self.config.max_ns_per_delegation
        kept: dict[str, None] = {}
        for rdata in ns_rrset:
            kept[_text(rdata.target)] = None
            if len(kept) >= limit:
                break
        ns_names = tuple(kept)
        wanted = set(ns_names)
        glue: dict[str, list[str]] = {}
        ttl = float(ns_rrset.ttl)
        for owner, rrset in parsed.additional:
            # RFC 2181 §5.4.1 / bailiwick: glue only for the NS names, inside the delegating zone
            if rrset.rdtype in (_A, _AAAA) and owner in wanted and is_subdomain(owner, zone):
                glue.setdefault(owner, []).extend(r.address for r in rrset)
                ttl = min(ttl, rrset.ttl)
        delegation = Delegation(child, ns_names, {k: tuple(v) for k, v in glue.items()})
        self.infra.store_delegation(delegation, ttl)
        self._enter(delegation)
        with_glue = f", glue for {len(glue)}" if glue else ", no glue"
        return StepOutcome(Verdict.REFERRAL, f"referral to {child} ({len(ns_names)} NS{with_glue})")

    def _soa(self, parsed: _Parsed, name: str) -> SOARecord | None:
        for owner, rrset in parsed.authority:
            if rrset.rdtype == _SOA and is_subdomain(owner, self.zone) and is_subdomain(name, owner):
                record = from_rdata(owner, rrset.ttl, rrset[0])
                assert isinstance(record, SOARecord)
                return record
        return None

    # -- endings -----------------------------------------------------------------------------
    def _finish_answer(self, owner: str, rrset: dns.rrset.RRset) -> StepOutcome:
        ttl = rrset.ttl
        records: list[Record] = [from_rdata(owner, ttl, rdata) for rdata in rrset]
        answer = Answer(
            self.qname, self.qtype, records, SOURCE,
            cname_chain=tuple(self.chain), canonical_name=owner,
        )
        self._done = Done(answer=answer)
        hops = f" via {len(self.chain)} CNAME" if self.chain else ""
        return StepOutcome(Verdict.ANSWER, f"answer: {len(records)} {self.qtype}{hops}")

    def _chain_end(self, name: str, parsed: _Parsed, rcode: int) -> StepOutcome:
        """The chain ended at ``name`` without data: negative in this zone, or restart there."""
        if is_subdomain(name, self.zone):
            has_cut = any(r.rdtype == _NS and _text(r.name) != self.zone for _, r in parsed.authority)
            if not has_cut:
                if rcode == _NXDOMAIN:
                    return self._finish_negative(NXDomain, name, parsed, None)
                if self._soa(parsed, name) is not None:
                    return self._finish_negative(NoAnswer, name, parsed, None)
        return self._restart(name)

    def _restart(self, name: str) -> StepOutcome:
        if name == self.qname or name in self._seen_targets:
            self._fail(ServFail(f"CNAME loop at {name}", name=self.qname, rdtype=self.qtype,
                                source=SOURCE, rcode="SERVFAIL"))
            return StepOutcome(Verdict.FAILED, f"CNAME loop at {name}")
        if len(self.chain) > self.config.max_cname_hops:
            self._fail(ServFail(f"CNAME chain longer than {self.config.max_cname_hops}",
                                name=self.qname, rdtype=self.qtype, source=SOURCE, rcode="SERVFAIL"))
            return StepOutcome(Verdict.FAILED, "CNAME chain too long")
        self._seen_targets = _with(self._seen_targets, name)
        self.target = name
        self._enter(self.infra.closest_delegation(name, parent_side=self.qtype == "DS"))
        return StepOutcome(Verdict.ALIAS, f"alias: continuing with {name} from {self.zone}")

    def _finish_negative(
        self, kind: type[NXDomain] | type[NoAnswer], name: str, parsed: _Parsed, server: ServerAddr | None
    ) -> StepOutcome:
        soa = self._soa(parsed, name)
        ttl = soa.negative_ttl if soa is not None else 0
        self._done = Done(error=kind(
            name=self.qname, rdtype=self.qtype, source=SOURCE, ttl=ttl, soa=soa,
            cname_chain=tuple(self.chain), canonical_name=name,
        ))
        label = "NXDOMAIN" if kind is NXDomain else "NODATA"
        via = f" (for {name})" if name != self.qname else ""
        return StepOutcome(Verdict.NEGATIVE, f"{label}{via}, negative TTL {ttl}")

    def _fail(self, error: ResolveError) -> Done:
        self._done = Done(error=error)
        return self._done

    def _give_up(self) -> Done:
        failures = self._failures
        if failures and all(f == "TIMEOUT" for f in failures):
            error: ResolveError = ResolveTimeout(
                f"every server for {self.zone} timed out resolving {self.qname} {self.qtype}",
                name=self.qname, rdtype=self.qtype, source=SOURCE,
            )
        else:
            last = next((f for f in reversed(failures) if f not in ("TIMEOUT", "LAME", "NETWORK")), None)
            what = "lame" if "LAME" in failures else ("unreachable" if "NETWORK" in failures else "unusable")
            if not failures:
                what = "without usable addresses"
            error = ServFail(
                f"no server for {self.zone} could answer {self.target} {self.qtype} "
                f"(servers {what})",
                name=self.qname, rdtype=self.qtype, source=SOURCE, rcode=last or "SERVFAIL",
            )
        self._trace(None, self.target, self.qtype, f"giving up: {error}")
        return self._fail(error)

    def _trace(
        self, server: ServerAddr | None, qname: str, qtype: str, outcome: str,
        elapsed: float | None = None, zone: str | None = None,
    ) -> None:
        if self.tracer is not None:
            self.tracer(TraceStep(self.depth, zone or self.zone, server, qname, qtype, outcome, elapsed))

    def _trace_outcome(
        self, server: ServerAddr, step: SendQuery, outcome: StepOutcome, elapsed: float | None
    ) -> None:
        if self.tracer is not None:
            self.tracer(TraceStep(
                self.depth, step.zone, server, step.qname, step.qtype, outcome.text, elapsed, outcome.verdict,
            ))


_MAX_RRSETS = 256
#: what the sets of a resolution hold until something is added (shared, never mutated)
_NOTHING: frozenset[Any] = frozenset()
_TTL_LIMIT = 1 << 31
_FAILED_LOOKUP_TTL = 5.0  # seconds an NS name that could not be resolved is not asked again


def _with(items: AbstractSet[_T], item: _T) -> set[_T]:
    """``items`` with ``item`` added: in place once it is a set of its own, a new set while
    it is still the shared ``_NOTHING``."""
    if isinstance(items, set):
        items.add(item)
        return items
    return {item}


def _mismatch(response: dns.message.Message, step: SendQuery) -> str | None:
    """Why ``response`` is not a reply to ``step`` (None: it is one)."""
    if not response.flags & _QR:
        return "QR clear: the query came back"
    if response.opcode() != _QUERY:
        return f"opcode {dns.opcode.to_text(response.opcode())}"
    if len(response.question) != 1:
        return f"{len(response.question)} questions"
    question = response.question[0]
    if question.rdclass != _IN:
        return f"class {dns.rdataclass.to_text(question.rdclass)}"
    if question.rdtype != _rdtype(step.qtype) or _text(question.name) != step.qname:
        return f"another question ({question.name} {dns.rdatatype.to_text(question.rdtype)})"
    return None


def describe(result: Any) -> str:
    """Short text of a resolution result for traces."""
    if isinstance(result, Answer):
        return ", ".join(r.text for r in result.records)
    return str(result)
