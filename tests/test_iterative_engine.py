"""Unit tests of the iterative resolver's sans-I/O engine: scripted responses, no sockets."""

from __future__ import annotations

from collections.abc import Iterable

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from asyncresolve.answer import Answer
from asyncresolve.backends.iterative.engine import (
    Done,
    EngineConfig,
    ExchangeFailed,
    NeedSubResolution,
    NoReply,
    Reply,
    Resolution,
    SendQuery,
    TraceStep,
    Verdict,
)
from asyncresolve.backends.iterative.infra import Delegation, Infrastructure
from asyncresolve.backends.iterative.servers import ServerStats
from asyncresolve.cache import TTLCache
from asyncresolve.errors import NoAnswer, NXDomain, ResolveTimeout, ServFail
from asyncresolve.records import ARecord, CNAMERecord

ROOT = ("127.9.0.1", 5300)
ROOT2 = ("127.9.0.2", 5300)
PORT = 5300

SOA_TEST = "test. 3600 IN SOA ns1.nic.test. hostmaster.test. 1 7200 900 1209600 300"
SOA_EX = "example.test. 600 IN SOA ns1.example.test. h.example.test. 1 7200 900 1209600 120"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_infra(clock: FakeClock, hints: Iterable[tuple[str, int]] = (ROOT,)) -> Infrastructure:
    cache = TTLCache(clock=clock)
    return Infrastructure(list(hints), cache=cache, port=PORT, stats=ServerStats(clock=clock))


def config(**kw: object) -> EngineConfig:
    kw.setdefault("qname_minimisation", False)
    kw.setdefault("ipv6", False)
    return EngineConfig(**kw)  # type: ignore[arg-type]


def reply(
    action: SendQuery,
    *,
    answer: Iterable[str] = (),
    authority: Iterable[str] = (),
    additional: Iterable[str] = (),
    aa: bool = True,
    rcode: int = dns.rcode.NOERROR,
) -> dns.message.Message:
    """A response to ``action`` with the given zone-file lines in each section."""
    query = dns.message.make_query(action.qname, action.qtype)
    response = dns.message.make_response(query)
    response.flags &= ~dns.flags.RD
    if aa:
        response.flags |= dns.flags.AA
    response.set_rcode(rcode)
    for section, lines in ((response.answer, answer), (response.authority, authority),
                           (response.additional, additional)):
        for line in lines:
            owner, ttl, rdclass, rdtype, rdata = line.split(None, 4)
            rrset = dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, rdata)
            existing = next((r for r in section if r.name == rrset.name and r.rdtype == rrset.rdtype), None)
            if existing is not None:
                existing.union_update(rrset)
            else:
                section.append(rrset)
    return response


def expect_send(res: Resolution) -> SendQuery:
    action = res.next_action()
    assert isinstance(action, SendQuery), action
    return action


def referral_to_test(action: SendQuery, ns_ip: str = "127.9.1.1") -> dns.message.Message:
    return reply(
        action, aa=False,
        authority=["test. 172800 IN NS ns1.nic.test."],
        additional=[f"ns1.nic.test. 172800 IN A {ns_ip}"],
    )


def referral_to_example(action: SendQuery, ns_ip: str = "127.9.2.1", ttl: int = 86400) -> dns.message.Message:
    return reply(
        action, aa=False,
        authority=[f"example.test. {ttl} IN NS ns1.example.test."],
        additional=[f"ns1.example.test. {ttl} IN A {ns_ip}"],
    )


def walk_to_example(res: Resolution) -> SendQuery:
    """Drive ``res`` through root and test. referrals; return the query to example.test.'s server."""
    action = expect_send(res)
    assert action.server == ROOT
    assert action.zone == "."
    res.receive(referral_to_test(action), action.server)
    action = expect_send(res)
    assert action.server == ("127.9.1.1", PORT)
    assert action.zone == "test."
    res.receive(referral_to_example(action), action.server)
    action = expect_send(res)
    assert action.server == ("127.9.2.1", PORT)
    assert action.zone == "example.test."
    return action


def done(res: Resolution) -> Done:
    action = res.next_action()
    assert isinstance(action, Done), action
    return action


# -- referrals, answers, caching ------------------------------------------------------------
def test_follows_referrals_to_the_answer(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = walk_to_example(res)
    assert (action.qname, action.qtype) == ("www.example.test.", "A")
    res.receive(reply(action, answer=["www.example.test. 300 IN A 192.0.2.1"]), action.server)
    result = done(res)
    assert isinstance(result.answer, Answer)
    assert result.answer.records == (ARecord("www.example.test.", 300, "192.0.2.1"),)
    assert result.answer.source == "iterative"
    assert res.budget.sent == 3


def test_delegations_are_cached_so_the_next_name_skips_root_and_tld(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = walk_to_example(res)
    res.receive(reply(action, answer=["www.example.test. 300 IN A 192.0.2.1"]), action.server)
    cached = infra.cached_delegation("example.test.")
    assert cached == Delegation("example.test.", ("ns1.example.test.",), {"ns1.example.test.": ("127.9.2.1",)})
    second = Resolution("mail.example.test.", "A", infra, config())
    action = expect_send(second)
    assert action.server == ("127.9.2.1", PORT)
    assert action.zone == "example.test."


def test_cached_delegation_expires_with_the_ns_ttl(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = expect_send(res)
    res.receive(referral_to_test(action), action.server)
    action = expect_send(res)
    res.receive(referral_to_example(action, ttl=50), action.server)
    assert infra.cached_delegation("example.test.") is not None
    clock.now += 51
    assert infra.cached_delegation("example.test.") is None
    assert infra.closest_delegation("www.example.test.").zone == "test."


def test_out_of_bailiwick_glue_is_ignored_and_not_cached(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = expect_send(res)
    res.receive(referral_to_test(action), action.server)
    action = expect_send(res)
    # test.'s server refers to example.test. with an NS in other.zone. and "glue" for it:
    # test. may not vouch for other.zone. addresses, nor for victim.zone.
    res.receive(reply(
        action, aa=False,
        authority=["example.test. 86400 IN NS ns.other.zone."],
        additional=["ns.other.zone. 86400 IN A 127.66.6.6", "www.victim.zone. 86400 IN A 127.66.6.7"],
    ), action.server)
    deleg = infra.cached_delegation("example.test.")
    assert deleg is not None
    assert deleg.glue == {}
    assert infra.addresses("ns.other.zone.", "A") is None
    assert infra.addresses("www.victim.zone.", "A") is None
    action2 = res.next_action()
    assert action2 == NeedSubResolution("ns.other.zone.", "A", "example.test.")


def test_in_bailiwick_sibling_glue_is_used(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = expect_send(res)
    res.receive(referral_to_test(action), action.server)
    action = expect_send(res)
    res.receive(reply(
        action, aa=False,
        authority=["example.test. 86400 IN NS ns.sibling.test."],
        additional=["ns.sibling.test. 86400 IN A 127.9.3.3"],
    ), action.server)
    assert expect_send(res).server == ("127.9.3.3", PORT)


def test_glueless_delegation_resolves_the_ns_name_then_uses_it(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = expect_send(res)
    res.receive(referral_to_test(action), action.server)
    action = expect_send(res)
    res.receive(reply(action, aa=False, authority=["example.test. 86400 IN NS ns1.hosts.lab."]), action.server)
    need = res.next_action()
    assert need == NeedSubResolution("ns1.hosts.lab.", "A", "example.test.")
    assert isinstance(need, NeedSubResolution)
    child = res.sub_resolution(need)
    assert child.depth == 1
    assert child.budget is res.budget
    assert ("www.example.test.", "A") in child.stack
    # the child walks from the root (scripted here in two steps)
    c1 = expect_send(child)
    assert c1.server == ROOT
    assert c1.qname == "ns1.hosts.lab."
    child.receive(reply(c1, aa=False, authority=["lab. 3600 IN NS ns.lab."],
                        additional=["ns.lab. 3600 IN A 127.9.4.4"]), c1.server)
    c2 = expect_send(child)
    child.receive(reply(c2, answer=["ns1.hosts.lab. 120 IN A 127.9.5.5"]), c2.server)
    sub = done(child)
    assert sub.answer is not None
    res.sub_resolved(need, sub.answer)
    assert infra.addresses("ns1.hosts.lab.", "A") == ("127.9.5.5",)
    action = expect_send(res)
    assert action.server == ("127.9.5.5", PORT)
    assert action.zone == "example.test."
    assert res.budget.sent == 5


def test_sub_resolution_loop_is_detected(clock: FakeClock) -> None:
    infra = make_infra(clock)
    # example.test. is served by ns1.example.test. only, and the cached delegation lost its glue
    infra.store_delegation(Delegation("example.test.", ("ns1.example.test.",)), 3600)
    res = Resolution("ns1.example.test.", "A", infra, config())
    # the only way to reach the zone is the address being resolved: no action possible
    result = done(res)
    assert isinstance(result.error, ServFail)
    assert res.budget.sent == 0


def test_sub_resolution_depth_is_limited(clock: FakeClock) -> None:
    infra = make_infra(clock)
    infra.store_delegation(Delegation("example.test.", ("ns1.elsewhere.",)), 3600)
    res = Resolution("www.example.test.", "A", infra, config(max_depth=2), depth=2)
    result = done(res)
    assert isinstance(result.error, ServFail)
    shallow = Resolution("www.example.test.", "A", infra, config(max_depth=2), depth=1)
    assert isinstance(shallow.next_action(), NeedSubResolution)


# -- CNAME and DNAME ------------------------------------------------------------------------
def test_cname_chain_within_the_zone(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("alias.example.test.", "A", infra, config())
    action = walk_to_example(res)
    res.receive(reply(action, answer=[
        "alias.example.test. 100 IN CNAME alias2.example.test.",
        "alias2.example.test. 200 IN CNAME www.example.test.",
        "www.example.test. 300 IN A 192.0.2.1",
    ]), action.server)
    answer = done(res).answer
    assert answer is not None
    assert answer.cname_chain == (
        CNAMERecord("alias.example.test.", 100, "alias2.example.test."),
        CNAMERecord("alias2.example.test.", 200, "www.example.test."),
    )
    assert answer.canonical_name == "www.example.test."
    assert answer.records == (ARecord("www.example.test.", 300, "192.0.2.1"),)
    assert answer.ttl == 100


def test_cname_out_of_zone_restarts_and_ignores_the_out_of_bailiwick_answer(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("ext.example.test.", "A", infra, config())
    action = walk_to_example(res)
    # example.test.'s server also "answers" for www.other.test.: not its bailiwick
    res.receive(reply(action, answer=[
        "ext.example.test. 300 IN CNAME www.other.test.",
        "www.other.test. 300 IN A 127.66.6.6",
    ]), action.server)
    action = expect_send(res)  # restarted from the closest cached cut: test.
    assert action.zone == "test."
    assert action.qname == "www.other.test."
    res.receive(reply(action, aa=False, authority=["other.test. 3600 IN NS ns1.other.test."],
                      additional=["ns1.other.test. 3600 IN A 127.9.6.6"]), action.server)
    action = expect_send(res)
    res.receive(reply(action, answer=["www.other.test. 60 IN A 192.0.2.9"]), action.server)
    answer = done(res).answer
    assert answer is not None
    assert [r.address for r in answer.records] == ["192.0.2.9"]  # type: ignore[attr-defined]
    assert answer.cname_chain == (CNAMERecord("ext.example.test.", 300, "www.other.test."),)


def test_cname_to_a_missing_name_in_zone_is_nxdomain(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("dangling.example.test.", "A", infra, config())
    action = walk_to_example(res)
    res.receive(reply(
        action, rcode=dns.rcode.NXDOMAIN,
        answer=["dangling.example.test. 300 IN CNAME gone.example.test."], authority=[SOA_EX],
    ), action.server)
    error = done(res).error
    assert isinstance(error, NXDomain)
    assert error.name == "dangling.example.test."
    assert error.ttl == 120


def test_dname_is_followed_by_synthesis(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.d.example.test.", "A", infra, config())
    action = walk_to_example(res)
    res.receive(reply(action, answer=[
        "d.example.test. 300 IN DNAME example.test.",
        "www.example.test. 300 IN A 192.0.2.1",
    ]), action.server)
    answer = done(res).answer
    assert answer is not None
    assert answer.cname_chain == (CNAMERecord("www.d.example.test.", 300, "www.example.test."),)
    assert answer.records == (ARecord("www.example.test.", 300, "192.0.2.1"),)


def test_cname_loop_and_hop_limit(clock: FakeClock) -> None:
    infra = make_infra(clock)
    infra.store_delegation(Delegation("a.test.", ("ns.a.test.",), {"ns.a.test.": ("127.9.7.7",)}), 3600)
    infra.store_delegation(Delegation("b.test.", ("ns.b.test.",), {"ns.b.test.": ("127.9.8.8",)}), 3600)
    res = Resolution("x.a.test.", "A", infra, config())
    action = expect_send(res)
    res.receive(reply(action, answer=["x.a.test. 60 IN CNAME x.b.test."]), action.server)
    action = expect_send(res)
    res.receive(reply(action, answer=["x.b.test. 60 IN CNAME x.a.test."]), action.server)
    error = done(res).error
    assert isinstance(error, ServFail)
    assert "loop" in str(error)

    res = Resolution("h0.a.test.", "A", infra, config(max_cname_hops=3))
    for hop in range(10):
        action = res.next_action()
        if isinstance(action, Done):
            break
        assert isinstance(action, SendQuery)
        zone = "b.test." if hop % 2 == 0 else "a.test."
        res.receive(reply(action, answer=[f"{action.qname} 60 IN CNAME h{hop + 1}.{zone}"]), action.server)
    error = done(res).error
    assert isinstance(error, ServFail)
    assert "longer than 3" in str(error)
    assert hop == 4


# -- negative answers -------------------------------------------------------------------------
def test_nxdomain_carries_the_soa_and_rfc2308_ttl(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("nope.example.test.", "A", infra, config())
    action = walk_to_example(res)
    res.receive(reply(action, rcode=dns.rcode.NXDOMAIN, authority=[SOA_EX]), action.server)
    error = done(res).error
    assert isinstance(error, NXDomain)
    assert error.ttl == 120  # min(SOA TTL 600, MINIMUM 120)
    assert error.soa is not None
    assert error.soa.name == "example.test."
    assert error.soa.minimum == 120


def test_nodata_is_noanswer_with_soa(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "AAAA", infra, config())
    action = walk_to_example(res)
    res.receive(reply(action, authority=[SOA_EX]), action.server)
    error = done(res).error
    assert isinstance(error, NoAnswer)
    assert error.ttl == 120
    assert error.rdtype == "AAAA"


def test_soa_of_another_zone_is_not_trusted(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("nope.example.test.", "A", infra, config())
    action = walk_to_example(res)
    res.receive(reply(action, rcode=dns.rcode.NXDOMAIN,
                      authority=["victim.zone. 600 IN SOA a. b. 1 2 3 4 5"]), action.server)
    error = done(res).error
    assert isinstance(error, NXDomain)
    assert error.soa is None
    assert error.ttl == 0


# -- lame servers and failures ----------------------------------------------------------------
def two_server_zone(infra: Infrastructure) -> None:
    infra.store_delegation(Delegation(
        "example.test.", ("ns1.example.test.", "ns2.example.test."),
        {"ns1.example.test.": ("127.9.2.1",), "ns2.example.test.": ("127.9.2.2",)},
    ), 3600)


@pytest.mark.parametrize("kind", ["non-aa-answer", "upward", "sideways", "refused", "non-aa-nxdomain"])
def test_lame_server_is_marked_and_the_next_one_tried(clock: FakeClock, kind: str) -> None:
    infra = make_infra(clock)
    two_server_zone(infra)
    res = Resolution("www.example.test.", "A", infra, config())
    first = expect_send(res)
    bad = {
        "non-aa-answer": reply(first, aa=False, answer=["www.example.test. 300 IN A 127.66.6.6"]),
        "upward": reply(first, aa=False, authority=[". 518400 IN NS a.root-servers.lab."]),
        "sideways": reply(first, aa=False, authority=["other.test. 3600 IN NS ns.other.test."]),
        "refused": reply(first, aa=False, rcode=dns.rcode.REFUSED),
        "non-aa-nxdomain": reply(first, aa=False, rcode=dns.rcode.NXDOMAIN),
    }[kind]
    outcome = res.receive(bad, first.server)
    assert outcome.verdict is Verdict.NEXT_SERVER
    assert "lame" in outcome.text
    assert infra.is_lame("example.test.", first.server)
    second = expect_send(res)
    assert second.server != first.server
    res.receive(reply(second, answer=["www.example.test. 300 IN A 192.0.2.1"]), second.server)
    answer = done(res).answer
    assert answer is not None
    assert answer.addresses == ["192.0.2.1"]
    # the lame mark is remembered: the next resolution skips that server
    again = Resolution("mail.example.test.", "A", infra, config())
    assert expect_send(again).server == second.server
    clock.now += 901
    assert not infra.is_lame("example.test.", first.server)


def test_servfail_tries_the_next_server_then_gives_up_with_the_rcode(clock: FakeClock) -> None:
    infra = make_infra(clock)
    two_server_zone(infra)
    res = Resolution("www.example.test.", "A", infra, config())
    seen = set()
    for _ in range(2):
        action = expect_send(res)
        seen.add(action.server)
        res.receive(reply(action, rcode=dns.rcode.SERVFAIL), action.server)
    assert len(seen) == 2
    error = done(res).error
    assert isinstance(error, ServFail)
    assert error.rcode == "SERVFAIL"
    assert not infra.is_lame("example.test.", ("127.9.2.1", PORT))  # failure, not lameness


def test_timeouts_retry_each_server_a_bounded_number_of_times(clock: FakeClock) -> None:
    infra = make_infra(clock)
    two_server_zone(infra)
    res = Resolution("www.example.test.", "A", infra, config(max_attempts_per_server=2))
    sent = []
    while isinstance(action := res.next_action(), SendQuery):
        sent.append(action.server)
        infra.servers.record_timeout(action.server)  # what the driver does
        res.timeout(action.server)
    assert sorted(sent) == sorted([("127.9.2.1", PORT), ("127.9.2.2", PORT)] * 2)
    assert isinstance(done(res).error, ResolveTimeout)


def test_query_budget_bounds_upstream_queries(clock: FakeClock) -> None:
    infra = make_infra(clock, hints=[ROOT, ROOT2])
    res = Resolution("www.example.test.", "A", infra, config(max_queries=3, max_attempts_per_server=5))
    count = 0
    while isinstance(action := res.next_action(), SendQuery):
        count += 1
        res.timeout(action.server)
    assert count == 3
    error = done(res).error
    assert isinstance(error, ServFail)
    assert "3 upstream queries" in str(error)


def test_non_loopback_servers_are_never_used_with_a_loopback_root(clock: FakeClock) -> None:
    infra = make_infra(clock)
    assert infra.loopback_only
    infra.store_delegation(Delegation(
        "example.test.", ("ns1.example.test.", "ns2.example.test."),
        {"ns1.example.test.": ("192.0.2.53",), "ns2.example.test.": ("127.9.2.2",)},
    ), 3600)
    res = Resolution("www.example.test.", "A", infra, config())
    assert expect_send(res).server == ("127.9.2.2", PORT)


# -- QNAME minimisation -----------------------------------------------------------------------
def test_qname_minimisation_asks_one_label_more_each_time(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("a.b.www.example.test.", "MX", infra, config(qname_minimisation=True))
    action = expect_send(res)
    assert (action.qname, action.qtype, action.minimised) == ("test.", "A", True)
    res.receive(referral_to_test(action), action.server)
    action = expect_send(res)
    assert (action.qname, action.qtype) == ("example.test.", "A")
    res.receive(referral_to_example(action), action.server)
    action = expect_send(res)
    assert (action.qname, action.qtype) == ("www.example.test.", "A")
    res.receive(reply(action, answer=["www.example.test. 300 IN A 192.0.2.1"]), action.server)
    action = expect_send(res)
    assert (action.qname, action.qtype) == ("b.www.example.test.", "A")
    res.receive(reply(action, authority=[SOA_EX]), action.server)  # empty non-terminal
    action = expect_send(res)
    assert (action.qname, action.qtype, action.minimised) == ("a.b.www.example.test.", "MX", False)
    res.receive(reply(action, answer=["a.b.www.example.test. 300 IN MX 10 mx.example.test."]), action.server)
    assert done(res).answer is not None


def test_relaxed_minimisation_retries_the_full_name_after_nxdomain(clock: FakeClock) -> None:
    infra = make_infra(clock)
    infra.store_delegation(Delegation("example.test.", ("ns1.example.test.",),
                                      {"ns1.example.test.": ("127.9.2.1",)}), 3600)
    res = Resolution("a.broken.example.test.", "A", infra, config(qname_minimisation=True))
    action = expect_send(res)
    assert action.qname == "broken.example.test."
    res.receive(reply(action, rcode=dns.rcode.NXDOMAIN, authority=[SOA_EX]), action.server)
    action = expect_send(res)
    assert (action.qname, action.minimised) == ("a.broken.example.test.", False)
    res.receive(reply(action, answer=["a.broken.example.test. 300 IN A 192.0.2.4"]), action.server)
    assert done(res).answer is not None

    strict = Resolution("a.nope.example.test.", "A", infra,
                        config(qname_minimisation=True, minimisation_strict=True))
    action = expect_send(strict)
    strict.receive(reply(action, rcode=dns.rcode.NXDOMAIN, authority=[SOA_EX]), action.server)
    error = done(strict).error
    assert isinstance(error, NXDomain)
    assert error.name == "a.nope.example.test."


def test_ds_is_asked_from_the_parent_side(clock: FakeClock) -> None:
    infra = make_infra(clock)
    two_server_zone(infra)
    infra.store_delegation(Delegation("test.", ("ns1.nic.test.",), {"ns1.nic.test.": ("127.9.1.1",)}), 3600)
    res = Resolution("example.test.", "DS", infra, config(qname_minimisation=True))
    action = expect_send(res)
    assert action.zone == "test."
    assert (action.qname, action.qtype) == ("example.test.", "DS")


# -- trace --------------------------------------------------------------------------------
def test_trace_records_each_step(clock: FakeClock) -> None:
    infra = make_infra(clock)
    steps: list[TraceStep] = []
    res = Resolution("www.example.test.", "A", infra, config(), tracer=steps.append)
    action = walk_to_example(res)
    res.receive(reply(action, answer=["www.example.test. 300 IN A 192.0.2.1"]), action.server, 0.002)
    assert [s.zone for s in steps] == [".", "test.", "example.test."]
    assert [s.server for s in steps] == [ROOT, ("127.9.1.1", PORT), ("127.9.2.1", PORT)]
    assert steps[0].outcome.startswith("referral to test.")
    assert steps[2].outcome == "answer: 1 A"
    assert steps[2].elapsed == 0.002
    assert "www.example.test. A: answer: 1 A 2.0 ms" in str(steps[2])
    assert [s.verdict for s in steps] == [Verdict.REFERRAL, Verdict.REFERRAL, Verdict.ANSWER]


def test_deliver_takes_each_kind_of_exchange_and_says_what_it_did(clock: FakeClock) -> None:
    infra = make_infra(clock, hints=[ROOT, ROOT2])  # a server left after a timeout and a failure
    steps: list[TraceStep] = []
    res = Resolution("www.example.test.", "A", infra, config(), tracer=steps.append)
    action = expect_send(res)
    timed_out = res.deliver(action.server, NoReply(), 0.5)
    assert (timed_out.verdict, timed_out.text) == (Verdict.TIMEOUT, "timeout")
    action = expect_send(res)
    failed = res.deliver(action.server, ExchangeFailed("connection refused"))
    assert (failed.verdict, failed.text) == (Verdict.NEXT_SERVER, "failed: connection refused")
    action = expect_send(res)
    referral = res.deliver(action.server, Reply(referral_to_test(action)))
    assert referral.verdict is Verdict.REFERRAL
    assert str(referral) == referral.text
    assert referral.text.startswith("referral to test.")
    assert [(s.verdict, s.outcome) for s in steps] == [(o.verdict, o.text) for o in (timed_out, failed, referral)]


# -- server selection -----------------------------------------------------------------------
def test_server_selection_by_srtt_and_backoff(clock: FakeClock) -> None:
    stats = ServerStats(clock=clock, initial_timeout=0.5, min_timeout=0.1)
    fast, slow, new = ("127.0.0.1", 53), ("127.0.0.2", 53), ("127.0.0.3", 53)
    stats.record_rtt(fast, 0.010)
    stats.record_rtt(slow, 0.050)
    assert stats.choose([slow, fast]) == fast
    assert stats.choose([slow, fast, new]) == new  # never measured: explored first
    assert stats.timeout_for(new) == 0.5
    assert stats.timeout_for(fast) == pytest.approx(0.1)  # 10 ms + 4 * 5 ms, clamped to the minimum
    stats.record_timeout(fast)
    assert stats.srtt(fast) == pytest.approx(0.1)  # at least the 100 ms it made us wait
    assert stats.choose([slow, fast]) == slow  # pushed below the 50 ms server at once
    stats.record_timeout(fast)
    assert stats.srtt(fast) == pytest.approx(0.2)  # doubled
    assert not stats.is_down(fast)
    stats.record_timeout(fast)  # third in a row: down
    assert stats.is_down(fast)
    assert stats.choose([slow, fast]) == slow
    assert stats.choose([fast]) == fast  # the only one left is probed anyway
    clock.now += 3
    assert not stats.is_down(fast)
    stats.record_rtt(fast, 0.002)
    assert stats.srtt(fast) == 0.002
    assert not stats.is_down(fast)


def test_a_resolution_waiting_for_its_reply_holds_few_objects(clock: FakeClock) -> None:
    """While its query is out, everything a resolution holds is walked by each young
    collection: its sets (servers failed, lookups done, EDNS refusals, CNAME targets) stay a
    shared empty one until something is added, and its stack is built only for a
    sub-resolution. Before, each resolution held four sets, a frozenset and a list of its own
    (in the iterative benchmark's cold run the garbage collector took 24-31 µs of the 170-220 µs of CPU per name)."""
    import gc

    def count(*kinds: type) -> int:
        return sum(1 for o in gc.get_objects() if type(o) in kinds)

    infra = make_infra(clock)
    before_sets, before_lists = count(set, frozenset), count(list)
    waiting = []
    for i in range(200):
        res = Resolution(f"h{i}.example.test.", "A", infra, config())
        expect_send(res)
        waiting.append(res)
    assert count(set, frozenset) - before_sets < 20  # 5 per resolution before
    assert count(list) - before_lists <= 2 * 200 + 10  # chain and failures (3 per resolution before)
    # what the sets are for still works, once something is added
    res = waiting[0]
    action = res.next_action()
    res.receive(reply(action, rcode=dns.rcode.SERVFAIL), action.server)
    assert action.server in res._dead
    assert ("h0.example.test.", "A") in res.stack


def test_a_final_answer_never_views_its_other_sections(clock: FakeClock) -> None:
    """The authority and additional sections of a fast-parsed answer are viewed only when
    the engine reads them (referrals, negative answers): a final answer, nearly every
    response of a bulk run, is concluded without them."""
    from asyncresolve.wire import MessageView, parse_fast

    infra = make_infra(clock)
    infra.store_delegation(Delegation("example.test.", ("ns1.example.test.",),
                                      {"ns1.example.test.": ("127.9.5.5",)}), 3600)
    res = Resolution("www.example.test.", "A", infra, config())
    action = expect_send(res)
    message = reply(action, answer=["www.example.test. 300 IN A 192.0.2.1"],
                    authority=["example.test. 3600 IN NS ns1.example.test."],
                    additional=["ns1.example.test. 3600 IN A 127.9.5.5"])
    view = MessageView(parse_fast(message.to_wire()))
    res.receive(view, action.server)  # type: ignore[arg-type]  # a MessageView reads like a Message
    answer = done(res).answer
    assert answer is not None
    assert answer.records == (ARecord("www.example.test.", 300, "192.0.2.1"),)
    assert view._authority is None
    assert view._additional is None
    # read when asked for, equal to dnspython's sections
    assert [(r.name.to_text(), r.rdtype, r.ttl, [x.target.to_text() for x in r]) for r in view.authority] == [
        (r.name.to_text(), r.rdtype, r.ttl, [x.target.to_text() for x in r]) for r in message.authority]
    assert [(r.name.to_text(), [x.address for x in r]) for r in view.additional] == [
        (r.name.to_text(), [x.address for x in r]) for r in message.additional]
