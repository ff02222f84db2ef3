"""The iterative engine against hostile replies: no echo or mismatched reply is evidence, one
bad packet never takes a zone down, glueless cycles fail at once, referrals listing
thousands of names cost no more than twenty, EDNS refused -> asked again without it."""

from __future__ import annotations

import time

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset
import pytest
from test_iterative_engine import (
    PORT,
    ROOT,
    FakeClock,
    config,
    done,
    expect_send,
    make_infra,
    referral_to_test,
    reply,
    walk_to_example,
)

from asyncresolve.answer import Answer
from asyncresolve.backends.iterative.engine import NeedSubResolution, Resolution, SendQuery, Verdict
from asyncresolve.backends.iterative.servers import ServerStats
from asyncresolve.errors import ServFail

EXAMPLE = ("127.9.2.1", PORT)
GOOD = "www.example.test. 300 IN A 192.0.2.1"


def echoed(action: SendQuery) -> dns.message.Message:
    query = dns.message.make_query(action.qname, action.qtype)
    query.flags = 0
    return query


def with_opcode(action: SendQuery) -> dns.message.Message:
    response = reply(action, answer=[GOOD])
    response.set_opcode(dns.opcode.NOTIFY)
    return response


def other_question(action: SendQuery) -> dns.message.Message:
    response = reply(action, answer=[GOOD])
    response.question = [dns.rrset.RRset(dns.name.from_text("evil.test."), 1, 1)]
    return response


def other_class(action: SendQuery) -> dns.message.Message:
    response = reply(action, answer=[GOOD])
    response.question = [dns.rrset.RRset(response.question[0].name, 3, 1)]
    return response


@pytest.mark.parametrize("bogus", [echoed, with_opcode, other_question, other_class])
def test_mismatched_reply_is_ignored_never_an_answer_nor_lame(clock: FakeClock, bogus: object) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = walk_to_example(res)
    outcome = res.receive(bogus(action), action.server)  # type: ignore[operator]
    assert outcome.verdict is Verdict.IGNORED
    assert outcome.text.startswith("ignored")
    assert not res.done
    assert not infra.is_lame("example.test.", EXAMPLE)
    again = expect_send(res)  # the same (only) server is asked again
    assert again.server == EXAMPLE
    res.receive(reply(again, answer=[GOOD]), again.server)
    assert isinstance(done(res).answer, Answer)


def test_one_refused_does_not_take_the_zone_down(clock: FakeClock) -> None:
    """Regression: one REFUSED made the zone's only server lame for 900 s (0 packets sent)."""
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = walk_to_example(res)
    res.receive(reply(action, rcode=dns.rcode.REFUSED), action.server)
    assert isinstance(done(res).error, ServFail)
    # the next lookup, straight away, still probes the zone's last server...
    second = Resolution("mail.example.test.", "A", infra, config())
    probe = expect_send(second)
    assert probe.server == EXAMPLE
    second.receive(reply(probe, answer=["mail.example.test. 300 IN A 192.0.2.2"]), probe.server)
    assert isinstance(done(second).answer, Answer)
    # ...and the good answer cleared the hold-down
    assert not infra.is_lame("example.test.", EXAMPLE)


def test_lame_hold_down_is_short_and_grows(clock: FakeClock) -> None:
    infra = make_infra(clock)
    holds = [infra.mark_lame("example.test.", EXAMPLE) for _ in range(12)]
    assert holds[0] <= 2.0
    assert holds == sorted(holds)
    assert holds[-1] == infra.lame_ttl
    assert infra.is_lame("example.test.", EXAMPLE)
    clock.now += infra.lame_ttl + 1
    assert not infra.is_lame("example.test.", EXAMPLE)


def test_held_down_server_skipped_while_another_is_good(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = expect_send(res)
    res.receive(referral_to_test(action), action.server)
    action = expect_send(res)
    res.receive(reply(
        action, aa=False,
        authority=["example.test. 86400 IN NS ns1.example.test.", "example.test. 86400 IN NS ns2.example.test."],
        additional=["ns1.example.test. 86400 IN A 127.9.2.1", "ns2.example.test. 86400 IN A 127.9.2.2"],
    ), action.server)
    infra.mark_lame("example.test.", EXAMPLE)
    action = expect_send(res)
    assert action.server == ("127.9.2.2", PORT)


def test_echo_is_no_lame_signal_through_the_whole_walk(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = expect_send(res)
    res.receive(echoed(action), action.server)
    assert not infra.is_lame(".", ROOT)


def test_formerr_to_edns_is_retried_once_without_edns(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = walk_to_example(res)
    assert action.edns
    outcome = res.receive(reply(action, rcode=dns.rcode.FORMERR), action.server)
    assert outcome.verdict is Verdict.RETRY
    assert "without EDNS" in outcome.text
    retry = expect_send(res)
    assert retry.server == EXAMPLE
    assert not retry.edns
    res.receive(reply(retry, rcode=dns.rcode.FORMERR), retry.server)  # only once
    assert isinstance(done(res).error, ServFail)


def test_notimp_to_edns_is_retried_without_edns(clock: FakeClock) -> None:
    infra = make_infra(clock)
    res = Resolution("www.example.test.", "A", infra, config())
    action = walk_to_example(res)
    res.receive(reply(action, rcode=dns.rcode.NOTIMP), action.server)
    retry = expect_send(res)
    assert not retry.edns
    res.receive(reply(retry, answer=[GOOD]), retry.server)
    assert isinstance(done(res).answer, Answer)


def test_glueless_ns_cycle_fails_at_once(clock: FakeClock) -> None:
    """a.test. is served by ns.b.test., b.test. by ns.a.test., both glueless: a cycle."""
    infra = make_infra(clock)
    res = Resolution("www.a.test.", "A", infra, config())
    sent = 0
    stack: list[Resolution] = [res]
    actions = 0
    while stack and actions < 200:
        actions += 1
        current = stack[-1]
        action = current.next_action()
        if isinstance(action, SendQuery):
            sent += 1
            if action.zone == ".":
                current.receive(referral_to_test(action), action.server)
            elif action.qname.endswith("a.test."):
                current.receive(reply(action, aa=False, authority=["a.test. 3600 IN NS ns.b.test."]),
                                action.server)
            else:
                current.receive(reply(action, aa=False, authority=["b.test. 3600 IN NS ns.a.test."]),
                                action.server)
        elif isinstance(action, NeedSubResolution):
            stack.append(current.sub_resolution(action))
            stack[-1]._need = action  # type: ignore[attr-defined]
        else:
            stack.pop()
            if stack:
                result = action.answer if action.answer is not None else action.error
                stack[-1].sub_resolved(current._need, result)  # type: ignore[attr-defined]
    final = res.next_action()
    assert final.error is not None
    assert isinstance(final.error, ServFail)
    assert sent <= 8  # root, test., and each zone once: not the whole budget
    # remembered: the next lookup in a.test. fails without a packet
    again = Resolution("mail.a.test.", "A", infra, config())
    assert isinstance(again.next_action().error, ServFail)  # type: ignore[union-attr]


@pytest.mark.parametrize("count", [1_000, 3_000])
def test_referral_with_thousands_of_glueless_ns_names_is_bounded(clock: FakeClock, count: int) -> None:
    """Regression: N glueless NS names cost CPU quadratic in N and N sub-lookups."""
    infra = make_infra(clock)
    cfg = config()
    res = Resolution("www.big.test.", "A", infra, cfg)
    action = expect_send(res)
    res.receive(referral_to_test(action), action.server)
    action = expect_send(res)
    names = [f"ns{i}.nowhere{i}.example." for i in range(count)]
    referral = reply(action, aa=False, authority=[f"big.test. 3600 IN NS {n}" for n in names])
    started = time.perf_counter()
    res.receive(referral, action.server)
    lookups = 0
    while True:
        action = res.next_action()
        if isinstance(action, NeedSubResolution):
            lookups += 1
            res.sub_resolved(action, ServFail(name=action.name, rdtype=action.rdtype, source="test"))
            continue
        break
    elapsed = time.perf_counter() - started
    assert isinstance(action.error, ServFail)  # type: ignore[union-attr]
    assert lookups <= cfg.max_sub_lookups
    cached = infra.cached_delegation("big.test.")
    assert cached is not None
    assert len(cached.ns_names) == cfg.max_ns_per_delegation
    assert elapsed < 0.5, elapsed


def test_burst_spreads_over_unknown_servers() -> None:
    """Queries in flight count: a burst never piles onto one server nobody has measured."""
    stats = ServerStats()
    servers = [("127.9.9.1", 53), ("127.9.9.2", 53)]
    chosen = []
    for _ in range(100):
        server = stats.choose(servers)
        assert server is not None
        stats.started(server, 0.6)
        chosen.append(server)
    assert 40 <= chosen.count(servers[0]) <= 60
    stats.finished(servers[1])
    stats.record_rtt(servers[1], 0.001)
    assert stats.choose(servers) == servers[1]


def test_qr_clear_reply_from_transport_level() -> None:
    """The transport keeps waiting past an echoed query (same ID, same question)."""
    from asyncresolve.backends.iterative.transport import Transport

    transport = Transport(use_0x20=False)
    query = transport.make_query("www.example.test.", "A")
    echo = dns.message.from_wire(query.to_wire())
    assert not transport.matches(query, echo)
    response = dns.message.make_response(query)
    assert transport.matches(query, response)
    response.flags |= dns.flags.AA
    response.set_opcode(dns.opcode.UPDATE)
    assert not transport.matches(query, response)
