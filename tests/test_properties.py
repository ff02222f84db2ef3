"""Property tests (hypothesis): name handling, the hosts parser, the iterative engine's
response handling and the c-ares result conversion, on structured random responses.

The response properties reuse the fuzz targets' invariants (``tests/fuzz/targets.py``):
nothing escapes but the expected errors, nothing out of bailiwick is cached or returned.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncresolve.answer import Answer, direct_answer
from asyncresolve.backends.hosts import parse_hosts
from asyncresolve.errors import InvalidName
from asyncresolve.names import normalize_name
from asyncresolve.records import AAAARecord, ARecord, a_record, aaaa_record

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))
import targets

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

# -- names ------------------------------------------------------------------------------
label = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=70)
names = st.one_of(
    st.lists(label, max_size=6).map(".".join),
    st.text(max_size=300),
    st.from_regex(r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){0,5}\.?", fullmatch=True),
)


@SETTINGS
@given(names)
def test_normalize_name_is_a_valid_lower_case_absolute_name_or_invalid(name: str) -> None:
    try:
        normal = normalize_name(name)
    except InvalidName:
        return
    assert normal.endswith(".")
    assert normal == normal.lower()
    assert normalize_name(normal) == normal  # idempotent
    assert len(normal) <= 254
    assert all(0 < len(part) <= 63 for part in normal[:-1].split(".")) or normal == "."


# -- the hosts parser ------------------------------------------------------------------------
addresses = st.one_of(st.ip_addresses().map(str), st.text(max_size=20))
host_lines = st.lists(
    st.tuples(addresses, st.lists(names, min_size=0, max_size=4), st.sampled_from(["", " # c", "\t"])),
    max_size=30,
)


@SETTINGS
@given(host_lines, st.text(max_size=200))
def test_hosts_parser_never_fails_and_keeps_only_valid_entries(lines: list, noise: str) -> None:
    text = "\n".join(f"{a} {' '.join(ns)}{tail}" for a, ns, tail in lines) + "\n" + noise
    table = parse_hosts(text)
    lookup = getattr(table, "lookup", table.names.get)  # compact tables expand entries on lookup
    for name in table.names:
        entry = lookup(name)
        assert entry is not None
        canonical, v4, v6 = entry
        assert name.endswith(".")
        assert canonical.endswith(".")
        for address in v4:
            assert ipaddress.ip_address(address).version == 4
        for address in v6:
            assert ipaddress.ip_address(address).version == 6
    for address in table.addresses:
        ipaddress.ip_address(address)


# -- responses --------------------------------------------------------------------------------
OWNERS = ["www.example.test.", "WwW.ExAmple.test.", "a.example.test.", "sub.example.test.",
          "ns.sub.example.test.", "example.test.", "www.victim.test.", "test.", ".", "ns.other.test."]
RDATA = {
    "A": ["192.0.2.1", "198.51.100.66"],
    "NS": ["ns.sub.example.test.", "ns.other.test.", "ns1.example.test."],
    "CNAME": ["a.example.test.", "www.example.test.", "www.victim.test."],
    "DNAME": ["other.test.", "example.test."],
    "SOA": ["ns1.example.test. h.example.test. 1 7200 900 1209600 120"],
    "TXT": ['"x"'],
}
@st.composite
def rrset(draw: st.DrawFn) -> dns.rrset.RRset:
    owner = draw(st.sampled_from(OWNERS))
    rdtype = draw(st.sampled_from(list(RDATA)))
    rdclass = draw(st.sampled_from(["IN", "IN", "IN", "CH"]))
    ttl = draw(st.sampled_from([0, 60, 86400, 2**31, 2**32 - 1]))
    if rdclass != "IN":
        return dns.rrset.from_text(owner, ttl, rdclass, "TXT", '"x"')
    data = draw(st.lists(st.sampled_from(RDATA[rdtype]), min_size=1, max_size=3, unique=True))
    if rdtype in ("CNAME", "DNAME", "SOA"):
        data = data[:1]
    return dns.rrset.from_text(owner, ttl, "IN", rdtype, *data)


@st.composite
def response(draw: st.DrawFn) -> bytes:
    query = dns.message.make_query(draw(st.sampled_from(["www.example.test.", "www.example.test.",
                                                          "other.example.test."])), "A",
                                   id=draw(st.integers(0, 65535)))
    message = dns.message.make_response(query)
    message.flags = dns.flags.QR if draw(st.booleans()) else 0
    if draw(st.booleans()):
        message.flags |= dns.flags.AA
    message.set_rcode(draw(st.sampled_from([0, 0, 0, 3, 2, 5, 11])))  # type: ignore[arg-type]
    for section in (message.answer, message.authority, message.additional):
        for item in draw(st.lists(rrset(), max_size=4)):
            section.append(item)
    return message.to_wire(want_shuffle=False)  # type: ignore[no-any-return]  # no shuffle: the draw stays deterministic


@SETTINGS
@given(response())
def test_engine_never_crashes_nor_caches_out_of_bailiwick(wire: bytes) -> None:
    targets.iterative_response(wire)


@SETTINGS
@given(response())
def test_cares_conversion_only_errors_or_answers_on_the_chain(wire: bytes) -> None:
    targets.cares_response(wire)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["A", "AAAA"]), st.integers(0, 2**31 - 1),
       st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4, unique=True))
def test_the_direct_builders_make_the_constructors_objects(rdtype: str, ttl: int, values: list[int]) -> None:
    """``direct_answer``, ``a_record`` and ``aaaa_record`` (the native backend's usual reply)
    build what ``Answer`` and the record classes build: equal fields, equal and hashed alike,
    immutable, the same TTL countdown."""
    name = "h1.bench.test."
    if rdtype == "A":
        texts = [str(ipaddress.IPv4Address(v)) for v in values]
        direct = [a_record(name, ttl, t) for t in texts]
        usual = [ARecord(name, ttl, t) for t in texts]
    else:
        texts = [str(ipaddress.IPv6Address(v << 64 | v)) for v in values]
        direct = [aaaa_record(name, ttl, t) for t in texts]
        usual = [AAAARecord(name, ttl, t) for t in texts]
    assert direct == usual
    assert [hash(r) for r in direct] == [hash(r) for r in usual]
    assert [type(r) for r in direct] == [type(r) for r in usual]
    assert [repr(r) for r in direct] == [repr(r) for r in usual]
    with pytest.raises(dataclasses.FrozenInstanceError):
        direct[0].ttl = 1  # type: ignore[misc]
    built = direct_answer(name, rdtype, tuple(direct), "native", ttl)
    general = Answer(name, rdtype, tuple(usual), "native", received_at=built._received_at)
    fields = ("name", "rdtype", "source", "canonical_name", "cname_chain", "from_cache", "ttl_known", "records",
              "original_ttl", "expires_at", "addresses")
    assert [getattr(built, f) for f in fields] == [getattr(general, f) for f in fields]
    assert built._clock is general._clock
    assert built.to_dict() == general.to_dict()
    with pytest.raises(AttributeError):
        built.ttl = 5  # type: ignore[misc]
