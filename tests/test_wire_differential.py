"""The fast wire parser against dnspython: the same ``WireResponse``, or a ``Decline``.

For every input the fast parser either returns exactly what dnspython's reading gives
(``asyncresolve.wire.parse_reference``) or raises ``Decline``; it never raises anything
else and never returns a message dnspython rejects. Inputs: messages generated from
random names, types, TTLs and compression choices (pointer games included), their
mutations (truncations, bit flips, overwritten bytes, pointers planted anywhere, counts
changed) and random bytes. Each hypothesis example runs ``MUTATIONS`` mutated variants,
so a run checks well over 100,000 messages in tens of seconds. Then every response the
lab's server sends, with each of its faults, goes through the same check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_lab import LAB_QUESTIONS, LAB_ZONES

from asyncresolve.testing import DNSLab
from asyncresolve.wire import (
    Decline,
    QueryTemplate,
    RandomSource,
    name_to_wire,
    name_to_wire_0x20,
    parse_fast,
    parse_reference,
    question,
    randomise_case,
)

EXAMPLES = int(os.environ.get("ASYNCRESOLVE_WIRE_EXAMPLES", "1500"))
MUTATIONS = 64
COUNTER = {"cases": 0, "accepted": 0, "examples": 0}


def check(data: bytes) -> bool:
    """The property itself; True when the fast parser accepted the message."""
    COUNTER["cases"] += 1
    try:
        fast = parse_fast(data)
    except Decline:
        fast = None
    try:
        ref = parse_reference(data)
    except Exception as exc:  # noqa: BLE001 - dnspython rejects it (with many types): the fast parser must have declined
        assert fast is None, f"fast parser accepted what dnspython rejects ({exc!r}): {data.hex()}"  # noqa: PT017
        return False
    if fast is not None:
        assert fast == ref, f"differs from dnspython on {data.hex()}:\n fast {fast}\n  ref {ref}"
        COUNTER["accepted"] += 1
        return True
    return False


# -- a message encoder with compression choices ---------------------------------------------
LABEL_BYTES = st.sampled_from(
    [b"www", b"example", b"test", b"ns1", b"a", b"MiXeD", b"_sip", b"_tcp", b"xn--bcher-kva", b"x" * 63,
     b"with.dot", b"sp ace", b"\x00\xff", b'q"uote', b"back\\slash", b"@$;()", b"*", b"-"]
) | st.binary(min_size=1, max_size=12)
NAMES = st.lists(LABEL_BYTES, min_size=0, max_size=6)
TYPES = st.sampled_from([1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 65, 46, 99, 0, 255, 41])
CLASSES = st.sampled_from([1, 1, 1, 1, 3, 255, 254])
TTLS = st.sampled_from([0, 1, 60, 300, 86400, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1)


class Encoder:
    """Writes a message name by name, compressing each name or not as told."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.offsets: dict[tuple[bytes, ...], int] = {}

    def name(self, labels: list[bytes], compress: bool) -> None:
        labels = [label[:63] for label in labels]
        for i in range(len(labels)):
            suffix = tuple(label.lower() for label in labels[i:])
            if compress and suffix in self.offsets:
                self.out += struct.pack("!H", 0xC000 | self.offsets[suffix])
                return
            if len(self.out) < 0x3FFF:
                self.offsets.setdefault(suffix, len(self.out))
            self.out.append(len(labels[i]))
            self.out += labels[i]
        self.out.append(0)


@st.composite
def rdata_for(draw, rdtype: int):
    """(kind, payload) describing rdata: names are encoded at write time (compression)."""
    if rdtype == 1:
        return ("raw", draw(st.binary(min_size=4, max_size=4) | st.binary(max_size=6)))
    if rdtype == 28:
        return ("raw", draw(st.sampled_from([bytes(16), bytes(15) + b"\1", bytes(10) + b"\xff\xff" + b"\1\2\3\4",
                                             bytes(12) + b"\1\2\3\4", b"\x20\x01\x0d\xb8" + bytes(12)])
                            | st.binary(min_size=16, max_size=16) | st.binary(max_size=18)))
    if rdtype in (2, 5, 12, 39):
        return ("name", draw(NAMES))
    if rdtype == 15:
        return ("mx", (draw(st.integers(0, 65535)), draw(NAMES)))
    if rdtype == 33:
        return ("srv", (draw(st.integers(0, 65535)), draw(st.integers(0, 65535)), draw(st.integers(0, 65535)),
                        draw(NAMES)))
    if rdtype == 6:
        return ("soa", (draw(NAMES), draw(NAMES), draw(st.lists(st.integers(0, 2**32 - 1), min_size=5, max_size=5))))
    if rdtype == 16:
        return ("txt", draw(st.lists(st.binary(max_size=20), min_size=0, max_size=3)))
    return ("raw", draw(st.binary(max_size=12)))


@st.composite
def records(draw):
    rdtype = draw(TYPES)
    return (draw(NAMES), rdtype, draw(CLASSES), draw(TTLS), draw(rdata_for(rdtype)), draw(st.booleans()))


@st.composite
def messages(draw) -> bytes:
    """A well-formed (or nearly) message: header, one question, records with their owner names
    often repeating (so that RRsets group, duplicate and mix TTLs), names compressed or not."""
    enc = Encoder()
    qname = draw(NAMES)
    answer_like = draw(st.lists(records(), max_size=5))
    owners = [qname, *[r[0] for r in answer_like]]
    sections = [[], [], []]
    for record in answer_like:
        owner = draw(st.sampled_from(owners)) if draw(st.booleans()) else record[0]
        sections[draw(st.sampled_from([0, 0, 1, 2]))].append((owner, *record[1:]))
    if draw(st.booleans()):  # EDNS
        opt_options = draw(st.sampled_from([b"", b"", b"\x00\x0a\x00\x08" + bytes(8), b"\x00"]))
        sections[2].append(([], 41, draw(st.sampled_from([512, 1232, 4096])),
                            draw(st.sampled_from([0, 0, 0x8000, 0x01000000, 0x00010000])),
                            ("raw", opt_options), False))
    opcode = draw(st.sampled_from([0, 0, 0, 0, 5, 4]))
    flags = 0x8000 | (opcode << 11) | draw(st.integers(0, 0x7FF))
    qdcount = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
    enc.out += struct.pack("!HHHHHH", draw(st.integers(0, 65535)), flags, qdcount, *map(len, sections))
    compress_question = draw(st.booleans()) and False  # question names are never compressed by servers
    for _ in range(max(qdcount, 1) if qdcount else 0):
        enc.name(qname, compress_question)
        enc.out += struct.pack("!HH", draw(TYPES), draw(CLASSES))
    for section in sections:
        for owner, rdtype, rdclass, ttl, (kind, payload), compress in section:
            enc.name(owner, compress)
            enc.out += struct.pack("!HHI", rdtype, rdclass, ttl)
            at = len(enc.out)
            enc.out += b"\0\0"
            if kind == "raw":
                enc.out += payload
            elif kind == "name":
                enc.name(payload, compress)
            elif kind == "mx":
                enc.out += struct.pack("!H", payload[0])
                enc.name(payload[1], compress)
            elif kind == "srv":
                enc.out += struct.pack("!HHH", *payload[:3])
                enc.name(payload[3], compress)
            elif kind == "soa":
                enc.name(payload[0], compress)
                enc.name(payload[1], compress)
                enc.out += struct.pack("!IIIII", *payload[2])
            else:
                for s in payload:
                    enc.out.append(len(s))
                    enc.out += s
            struct.pack_into("!H", enc.out, at, len(enc.out) - at - 2)
    return bytes(enc.out)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random damage: truncation, bit flips, a byte overwritten, a pointer planted, a count changed."""
    buf = bytearray(data)
    kind = rng.randrange(7)
    if not buf:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(20)))
    if kind == 0:
        return bytes(buf[: rng.randrange(len(buf))])
    if kind == 1:
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 2:
        buf[rng.randrange(len(buf))] = rng.choice([0, 1, 63, 64, 0x80, 0xC0, 0xFF, rng.randrange(256)])
    elif kind == 3 and len(buf) > 14:
        i = rng.randrange(12, len(buf) - 1)
        target = rng.choice([12, i, i + 1, i - 1, rng.randrange(len(buf) + 4), 0, 0x3FFF])
        struct.pack_into("!H", buf, i, 0xC000 | (target & 0x3FFF))
    elif kind == 4 and len(buf) >= 12:
        struct.pack_into("!H", buf, rng.choice([4, 6, 8, 10]), rng.choice([0, 1, 2, 3, 0xFFFF]))
    elif kind == 5:
        buf += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    else:
        i = rng.randrange(len(buf))
        del buf[i: i + rng.randrange(1, 4)]
    return bytes(buf)


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(messages(), st.integers(0, 2**32))
def test_generated_and_mutated_messages(data, seed):
    COUNTER["examples"] += 1
    check(data)
    rng = random.Random(seed)
    current = data
    for _ in range(MUTATIONS):
        current = mutate(current if rng.random() < 0.5 else data, rng)
        check(current)


@settings(max_examples=max(EXAMPLES // 3, 50), deadline=None)
@given(st.binary(min_size=0, max_size=80), st.integers(0, 2**32))
def test_random_bytes(data, seed):
    rng = random.Random(seed)
    header = struct.pack("!HHHHHH", rng.randrange(65536), 0x8000, 1, rng.randrange(4), rng.randrange(3),
                         rng.randrange(3))
    check(data)
    check(header + data)
    for _ in range(MUTATIONS // 4):
        check(mutate(header + data, rng))


# -- the fast path must actually be taken on ordinary replies ----------------------------
ORDINARY_TYPES = ["A", "AAAA", "CNAME", "NS", "MX", "TXT", "SRV", "SOA", "PTR"]
RDATA = {
    "A": "192.0.2.{i}", "AAAA": "2001:db8::{i}", "CNAME": "t{i}.Example.TEST.", "NS": "ns{i}.example.test.",
    "MX": "{i} mx{i}.example.test.", "TXT": '"v=spf1 -all" "{i}"', "SRV": "0 {i} 443 srv{i}.example.test.",
    "SOA": "ns1.example.test. h.example.test. {i} 7200 900 1209600 300", "PTR": "host{i}.example.test.",
}


@settings(max_examples=max(EXAMPLES // 3, 50), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ORDINARY_TYPES), st.integers(1, 3), st.integers(0, 2)), max_size=6),
       st.sampled_from(["www.example.test.", "WwW.ExAmPlE.TeSt.", "a.b.c.d.e.f.example.test."]),
       st.sampled_from([dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL]), st.booleans())
def test_ordinary_replies_take_the_fast_path(rrsets, qname, rcode, edns):
    query = dns.message.make_query(qname, "A", use_edns=0 if edns else None)
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    sections = [response.answer, response.authority, response.additional]
    for rdtype, count, where in rrsets:
        owner = qname if where == 0 else f"{rdtype.lower()}.example.test."
        texts = [RDATA[rdtype].format(i=i) for i in range(count)]
        sections[where].append(dns.rrset.from_text(owner, 300, "IN", rdtype, *texts))
    wire = response.to_wire()
    assert check(wire), "an ordinary reply declined the fast path"


def test_enough_cases_per_run():
    """The properties above checked at least 100,000 messages (when run together, as in CI)."""
    if COUNTER["examples"] < EXAMPLES:
        if os.environ.get("CI"):  # in CI the whole module runs: too few cases there is a failure
            pytest.fail(f"only {COUNTER['examples']} property examples ran (at least {EXAMPLES} in CI)")
        pytest.skip("run with the property tests of this module (not deselected)")
    print(f"wire differential: {COUNTER['cases']} messages checked, {COUNTER['accepted']} by the fast path")
    if EXAMPLES >= 1500:
        assert COUNTER["cases"] >= 100_000, COUNTER
    assert COUNTER["accepted"] > COUNTER["cases"] // 50, COUNTER  # the fast path is exercised, not always declined


# -- pointer games, named ------------------------------------------------------------------
def _header(an: int = 1) -> bytes:
    return struct.pack("!HHHHHH", 7, 0x8180, 1, an, 0, 0)


QUESTION = b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"


@pytest.mark.parametrize("owner", [
    b"\xc0\x0c",                      # the question name: accepted
    b"\xc0\x10",                      # "example.test." inside the question: accepted
    b"\xc0\x1f",                      # points at itself: a loop
    b"\xc0\x25",                      # forward pointer
    b"\x01a\xc0\x1f",                 # points at its own first label: loop
    b"\xc0\xff",                      # beyond the message
    b"\x41a",                         # label type 0x40
    b"\x81a",                         # label type 0x80
    b"\x3fabc",                       # label longer than the data
    b"",                              # nothing at all
])
def test_pointer_games(owner):
    rr = owner + struct.pack("!HHIH", 1, 1, 60, 4) + b"\xc0\x00\x02\x01"
    data = _header() + QUESTION + rr
    accepted = check(data)
    assert accepted == (owner in (b"\xc0\x0c", b"\xc0\x10"))


@pytest.mark.parametrize("records", [15, 16, 17, 20])
def test_pointer_chains_longer_than_sixteen_hops_decline(records):
    # record k is owned by "x" + a pointer to record k-1's owner (record 1's points at the
    # question): k hops; dnspython refuses more than 16
    body = bytearray(_header(records) + QUESTION)
    previous = 12
    for _ in range(records):
        here = len(body)
        body += b"\x01x" + struct.pack("!H", 0xC000 | previous) + struct.pack("!HHIH", 1, 1, 60, 4) + b"\1\2\3\4"
        previous = here
    assert check(bytes(body)) == (records <= 16)


def test_name_longer_than_255_bytes_declines():
    long_owner = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"  # 257 bytes
    data = _header() + QUESTION + long_owner + struct.pack("!HHIH", 1, 1, 60, 4) + b"\1\2\3\4"
    assert not check(data)


def test_ttl_with_the_top_bit_set_reads_as_zero():
    data = _header() + QUESTION + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0x80000000, 4) + b"\1\2\3\4"
    assert check(data)
    assert parse_fast(data).answer[0][3] == 0


def test_query_template_is_dnspython_rendering():
    for rd, payload in ((True, 1232), (False, 1232), (True, 0), (False, 4096)):
        template = QueryTemplate(recursion_desired=rd, edns_payload=payload)
        for name in ("www.example.test.", ".", "a\\.b.example.", "xn--bcher-kva.example."):
            for rdtype in ("A", "AAAA", "MX", "HTTPS"):
                wire = template.render(4660, name_to_wire(name), dns.rdatatype.from_text(rdtype))
                expected = dns.message.make_query(
                    name, rdtype, id=4660, flags=dns.flags.RD if rd else 0,
                    use_edns=0 if payload else False, payload=payload or 1232,
                )
                assert wire == expected.to_wire()


PLAIN_LABELS = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*", min_size=1, max_size=70)


@settings(max_examples=max(EXAMPLES // 3, 50), deadline=None)
@given(st.lists(PLAIN_LABELS, min_size=1, max_size=6), st.booleans(), st.integers(0, 65535))
def test_name_to_wire_is_dnspythons_or_refuses(labels, final_dot, qid):
    """Query names (relative or absolute) in wire form exactly as dnspython writes them; a name
    dnspython refuses (a label over 63 bytes, a name over 255) is refused with ValueError."""
    name = ".".join(labels) + ("." if final_dot else "")
    try:
        expected = dns.name.from_text(name).to_wire()
    except dns.exception.DNSException:
        with pytest.raises(ValueError, match=r"label|too long"):
            name_to_wire(name)
        return
    assert name_to_wire(name) == expected
    template = QueryTemplate(recursion_desired=True)
    assert template.render_question(qid, question(name_to_wire(name), 28)) == template.render(
        qid, name_to_wire(name), 28)


class _Bits(RandomSource):
    """The same random bytes for every reader made from one seed."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._stream = random.Random(seed)

    def take(self, count: int) -> bytes:
        return self._stream.randbytes(count)


ANY_LABELS = st.one_of(PLAIN_LABELS, st.text(min_size=0, max_size=70), st.sampled_from(["", "\\.", "a\\065", "."]))


@settings(max_examples=max(EXAMPLES // 3, 50), deadline=None)
@given(st.lists(ANY_LABELS, min_size=0, max_size=6), st.booleans(), st.integers(0, 2**32))
def test_name_to_wire_0x20_is_name_to_wire_then_randomise_case(labels, final_dot, seed):
    """The one-pass encoder gives, for the same random bits, exactly the bytes of
    ``randomise_case(name_to_wire(name))`` -- names of plain labels, escaped, relative, empty
    labels, non-ASCII, too long -- and refuses with the same ``ValueError`` what it refuses."""
    name = ".".join(labels) + ("." if final_dot else "")
    try:
        expected: bytes | str = randomise_case(name_to_wire(name), _Bits(seed))
    except Exception as exc:  # noqa: BLE001 - whatever it is, both must raise it alike
        expected = type(exc).__name__ + ": " + str(exc)
    try:
        got: bytes | str = name_to_wire_0x20(name, _Bits(seed))
    except Exception as exc:  # noqa: BLE001
        got = type(exc).__name__ + ": " + str(exc)
    if isinstance(expected, str):
        assert expected.startswith(("ValueError", "UnicodeEncodeError")), expected
    assert got == expected
    if isinstance(got, bytes) and name.endswith(".") and "\\" not in name and ".." not in name and name != ".":
        assert got.lower() == dns.name.from_text(name).to_wire().lower()  # the name asked, in any case


def test_name_to_wire_0x20_flips_about_half_the_letters():
    """The case of each letter is a coin toss (RFC 5452's 0x20): over 2,000 names of 26 letters,
    the upper-case share is near one half, and the name read back is the name asked."""
    source = RandomSource()
    name = "abcdefghijklm.nopqrstuvwxyz.test."
    upper = 0
    for _ in range(2000):
        wire = name_to_wire_0x20(name, source)
        assert dns.name.from_wire(wire, 0)[0] == dns.name.from_text(name)
        upper += sum(1 for c in wire if 65 <= c <= 90)
    assert 0.45 < upper / (2000 * 30) < 0.55


# -- every response the lab's server sends, with every fault ----------------------------------
FAULTS = [
    {}, {"servfail": True}, {"refuse": True}, {"truncate": True}, {"wrong_id": True},
    {"wrong_question": True}, {"malformed": True}, {"lame": True},
    {"poison": ["www.victim.test. 300 IN A 198.51.100.66"]},
]


async def _collect(address: tuple[str, int], wires: list[bytes], edns: bool) -> list[bytes]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect(address)
    replies = []
    try:
        for wire in wires:
            await loop.sock_sendall(sock, wire)
            with contextlib.suppress(TimeoutError):
                replies.append(await asyncio.wait_for(loop.sock_recv(sock, 65535), 2.0))
    finally:
        sock.close()
    return replies


async def test_every_lab_response_parses_identically():
    checked = accepted = 0
    async with DNSLab(LAB_ZONES, seed=1) as lab:
        server = lab.server_for("example.test.")
        stub = lab.stub_server
        for faults in FAULTS:
            for target in (server, lab.stub):
                target.faults.reset()
                for key, value in faults.items():
                    if key == "poison":
                        target.faults.poison_with(*value)
                    else:
                        setattr(target.faults, key, value)
            for edns, rd in ((True, False), (False, True)):
                template = QueryTemplate(recursion_desired=rd, edns_payload=1232 if edns else 0)
                wires = [template.render(i, name_to_wire(name), dns.rdatatype.from_text(rdtype))
                         for i, (name, rdtype) in enumerate(LAB_QUESTIONS)]
                for address in (server.address, stub):
                    for reply in await _collect(address, wires, edns):
                        checked += 1
                        accepted += check(reply)
                        rng = random.Random(checked)
                        for _ in range(3):
                            check(mutate(reply, rng))
    assert checked > len(LAB_QUESTIONS) * len(FAULTS) * 2
    assert accepted > checked // 3  # most of the lab's answers take the fast path


def test_fast_path_is_faster_than_dnspython():
    """Not a benchmark: a guard that the fast path stays the fast one (a wide margin)."""
    query = dns.message.make_query("www.example.test.", "A")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("www.example.test.", 60, "IN", "A", "192.0.2.1", "192.0.2.2"))
    response.authority.append(dns.rrset.from_text("example.test.", 60, "IN", "NS", "ns1.example.test."))
    response.additional.append(dns.rrset.from_text("ns1.example.test.", 60, "IN", "A", "192.0.2.53"))
    wire = response.to_wire()

    def timed(fn, rounds=300):
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(rounds):
                fn(wire)
            best = min(best, time.perf_counter() - started)
        return best

    assert timed(parse_fast) * 2 < timed(parse_reference)


def test_dnspython_reads_class_in_srv_the_same_after_a_class_any_one():
    """Found by the properties above: after one SRV of class ANY, dnspython read every SRV of
    class IN as generic data. ``load_rdata_classes`` (called by the backends) prevents it."""
    import subprocess
    import sys

    script = """
import struct, sys
import dns.message
from asyncresolve.wire import load_rdata_classes
if sys.argv[1] == "protected":
    load_rdata_classes()
def reply(rdclass):
    rr = bytes.fromhex("c00c") + struct.pack("!HHIH", 33, rdclass, 60, 7) + bytes(7)
    return struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + bytes.fromhex("0178000021" + "0001") + rr
dns.message.from_wire(reply(255))
rd = dns.message.from_wire(reply(1)).answer[0][0]
print(type(rd).__name__)
"""

    def run(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert run("unprotected") == "GenericRdata"  # dnspython's own behaviour: the bug
    assert run("protected") == "SRV"


@pytest.mark.parametrize("name", ["a\\", "a\\99.", "a..\\065."])
def test_name_to_wire_refuses_a_bad_escape_with_value_error(name):
    """A bad escape is the ``ValueError`` every caller catches, not dnspython's own exception
    (which went through the native backend's send path uncaught)."""
    with pytest.raises(ValueError, match="bad name"):
        name_to_wire(name)
    with pytest.raises(ValueError, match="bad name"):
        name_to_wire_0x20(name, RandomSource())


@pytest.mark.parametrize("name", ["a..", "a.b..", "..", "a...", ".a."])
def test_name_to_wire_refuses_an_empty_label_anywhere(name):
    """An empty label is refused wherever it is; the trailing ones were taken for the final dot
    ("a.." became "a.")."""
    with pytest.raises(ValueError, match="bad label"):
        name_to_wire(name)
    with pytest.raises(ValueError, match="bad label"):
        name_to_wire_0x20(name, RandomSource())
