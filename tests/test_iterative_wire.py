"""The transport's two shortcuts, checked against dnspython as the reference.

Queries are dnspython's rendering of a query cut into a template (only ID, name and type
change); a final answer is parsed by dnspython only up to its answer section. Both must
give exactly what dnspython's own full path gives.
"""

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest

from asyncresolve.backends.iterative.transport import Transport
from asyncresolve.wire import MessageView, from_message

NAMES = ["example.test.", "www.example.test.", "_sip._tcp.example.test.", "xn--bcher-kva.example.",
         ".".join(["a" * 63] * 3) + ".", "test."]
TYPES = ["A", "AAAA", "MX", "TXT", "NS", "DS", "SOA", "HTTPS", "PTR"]


@pytest.mark.parametrize("payload", [1232, 4096])
@pytest.mark.parametrize("qtype", TYPES)
def test_query_wire_is_dnspython_rendering(qtype, payload):
    transport = Transport(edns_payload=payload)
    for name in NAMES:
        question = transport._question(name, qtype)
        expected = dns.message.make_query(name, qtype, id=question.qid, flags=0, use_edns=0, payload=payload)
        assert question.wire == expected.to_wire()
        parsed = dns.message.from_wire(question.wire)
        assert parsed == expected
        assert parsed.id == question.qid


def test_query_ids_and_0x20_case_vary():
    transport = Transport(use_0x20=True)
    questions = [transport._question("www.example.test.", "A") for _ in range(200)]
    assert len({q.qid for q in questions}) > 150
    assert len({q.name.to_text() for q in questions}) > 50
    for q in questions:
        parsed = dns.message.from_wire(q.wire)
        assert parsed.question[0].name.labels == q.name.labels  # the case sent is the case kept


def response_for(transport, question, *, answer=(), authority=(), additional=(), aa=True,
                 rcode=dns.rcode.NOERROR, tc=False):
    query = dns.message.from_wire(question.wire)
    response = dns.message.make_response(query)
    if aa:
        response.flags |= dns.flags.AA
    if tc:
        response.flags |= dns.flags.TC
    response.set_rcode(rcode)
    for section, texts in ((response.answer, answer), (response.authority, authority),
                           (response.additional, additional)):
        for text in texts:
            section.append(dns.rrset.from_text(*text.split(maxsplit=4)))
    return response.to_wire()


CASES = {
    "final answer": dict(answer=["www.example.test. 60 IN A 192.0.2.10", "www.example.test. 60 IN A 192.0.2.11"],
                         authority=["example.test. 3600 IN NS ns1.example.test."],
                         additional=["ns1.example.test. 3600 IN A 127.0.0.1"]),
    "cname chain": dict(answer=["www.example.test. 60 IN CNAME edge.example.test.",
                                "edge.example.test. 30 IN A 192.0.2.12"]),
    "referral": dict(aa=False, authority=["example.test. 86400 IN NS ns1.example.test."],
                     additional=["ns1.example.test. 86400 IN A 127.0.0.2"]),
    "nxdomain": dict(rcode=dns.rcode.NXDOMAIN,
                     authority=["example.test. 300 IN SOA ns1.example.test. h.example.test. 1 2 3 4 300"]),
    "nodata": dict(authority=["example.test. 300 IN SOA ns1.example.test. h.example.test. 1 2 3 4 300"]),
    "truncated": dict(tc=True),
    "servfail": dict(rcode=dns.rcode.SERVFAIL, aa=False),
}


@pytest.mark.parametrize("case", CASES)
def test_parse_matches_dnspython_full_parse(case):
    transport = Transport()
    question = transport._question("www.example.test.", "A")
    wire = response_for(transport, question, **CASES[case])
    reference = dns.message.from_wire(wire)
    parsed = transport._parse(wire, question)
    assert parsed is not None
    assert (parsed.id, parsed.flags, parsed.rcode()) == (reference.id, reference.flags, reference.rcode())
    if isinstance(parsed, MessageView):  # the fast parser's reading: all of it equals dnspython's
        assert parsed.response == from_message(reference)
        return
    assert parsed.question == reference.question
    assert parsed.answer == reference.answer
    if case != "final answer":  # everything but a final answer is parsed whole
        assert parsed == reference


def test_ordinary_replies_take_the_fast_path():
    transport = Transport()
    question = transport._question("www.example.test.", "A")
    for case in ("final answer", "cname chain", "referral", "nxdomain", "nodata", "servfail"):
        assert isinstance(transport._parse(response_for(transport, question, **CASES[case]), question), MessageView)


def test_parse_ignores_replies_to_another_question():
    transport = Transport()
    question = transport._question("www.example.test.", "A")
    other = transport._question("www.example.test.", "AAAA")
    wire = response_for(transport, other, answer=["www.example.test. 60 IN AAAA 2001:db8::1"])
    assert transport._parse(wire, question) is None
    wrong_id = bytearray(response_for(transport, question, answer=["www.example.test. 60 IN A 192.0.2.1"]))
    wrong_id[0] ^= 0xFF
    assert transport._parse(bytes(wrong_id), question) is None
