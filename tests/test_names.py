import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncresolve import InvalidName, InvalidQuery
from asyncresolve.names import address_from_reverse_name, normalize_name, normalize_rdtype, reverse_name


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Example.COM", "example.com."),
        ("example.com.", "example.com."),
        (b"WWW.example.com", "www.example.com."),
        (".", "."),
        ("_sip._tcp.example.com", "_sip._tcp.example.com."),
        ("bücher.example", "xn--bcher-kva.example."),
        ("BÜCHER.example.", "xn--bcher-kva.example."),
        ("a" * 63 + ".test", "a" * 63 + ".test."),
    ],
)
def test_names_are_normalised(given, expected):
    assert normalize_name(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "", "a..b", ".example", "a" * 64 + ".test", ".".join(["a" * 60] * 5), "nul\x00byte.test",
        "space name.test", "tab\tname", 42, None, b"\xff\xfe", "xn--invalid-\u0378.test",
    ],
)
def test_bad_names_raise_invalid_name(bad):
    with pytest.raises(InvalidName):
        normalize_name(bad)


def test_name_length_limit_is_253():
    name = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters
    assert len(name) == 253
    assert normalize_name(name) == name + "."
    with pytest.raises(InvalidName):
        normalize_name(name + "b")


def test_record_types():
    assert normalize_rdtype("aaaa") == "AAAA"
    assert normalize_rdtype(15) == "MX"
    assert normalize_rdtype("TYPE65") == "HTTPS"
    for bad in ("BOGUS", "", -1, 70000, "OPT", None):
        with pytest.raises(InvalidQuery):
            normalize_rdtype(bad)


def test_reverse_names_round_trip():
    assert reverse_name("127.0.0.1") == "1.0.0.127.in-addr.arpa."
    assert address_from_reverse_name("1.0.0.127.in-addr.arpa.") == "127.0.0.1"
    v6 = reverse_name("2001:db8::1")
    assert v6.endswith(".ip6.arpa.")
    assert address_from_reverse_name(v6) == "2001:db8::1"
    assert address_from_reverse_name("example.com.") is None
    assert address_from_reverse_name("300.0.0.127.in-addr.arpa.") is None
    with pytest.raises(InvalidName):
        reverse_name("not-an-ip")


def test_random_garbage_names_give_invalid_name_or_a_valid_result():
    import random

    rng = random.Random(7)
    # \uff21 and \u3002: a fullwidth A and the ideographic full stop, which IDNA maps
    alphabet = "abcXYZ019-_.\\*@ \t\x00\x7fé€ß\u200b\ufffd\uff21\u3002"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        try:
            result = normalize_name(text)
        except InvalidName:
            continue
        assert result.endswith(".")
        assert result.isascii()
        assert result == result.lower()
        assert len(result) <= 254
        assert all(0 < len(label) <= 63 for label in result[:-1].split(".") if result != ".")


# -- one canonical form: escapes, the alphabet, every backend --------------------------------

@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("www.example.co\\109", "www.example.com."),
        ("www.example.co\\M", "www.example.com."),
        ("\\065\\066.test", "ab.test."),
        ("a\\-b.test.", "a-b.test."),
        ("\\_sip._tcp.example", "_sip._tcp.example."),
        ("*.example.test", "*.example.test."),
        ("0/26.2.0.192.in-addr.arpa", "0/26.2.0.192.in-addr.arpa."),
        ("\uff21\u3002b\u00fccher.example", "a.xn--bcher-kva.example."),
        ("_dmarc.b\u00fccher.example", "_dmarc.xn--bcher-kva.example."),
    ],
)
def test_escapes_are_decoded_into_one_canonical_form(given, expected):
    assert normalize_name(given) == expected


@pytest.mark.parametrize(
    "bad",
    ["a\\.", "a\\.b.test", "a\\\\.test", "a\\000.test", "a\\200.test", "a\\", "a\\(b.test", "a!b.test",
     "a@b.test", "a$b.test", "a:b.test", "a\\032b.test", "caf\\195\\169.test"],
)
def test_names_outside_the_canonical_alphabet_are_invalid(bad):
    with pytest.raises(InvalidName):
        normalize_name(bad)


def test_error_messages_quote_a_bounded_prefix_of_a_huge_name():
    huge = "a" * 2_000_000
    for bad in (huge, huge + ".", "a!" + huge, "a.b.\\" + huge, huge.encode()):
        with pytest.raises(InvalidName) as caught:
            normalize_name(bad)
        assert len(str(caught.value)) < 300
        assert len(str(caught.value.name)) < 300
    with pytest.raises(InvalidQuery) as caught:
        normalize_rdtype("X" * 1_000_000)
    assert len(str(caught.value)) < 300


def test_record_types_as_digit_strings_and_type0():
    assert normalize_rdtype("15") == "MX"
    assert normalize_rdtype(" 28 ") == "AAAA"
    assert normalize_rdtype("type65") == "HTTPS"
    assert normalize_rdtype("255") == "ANY"
    for bad in ("TYPE0", "NONE", 0, "0", "00000", "9" * 10_000, "AXFR", "252", True, 1.0, b"A"):
        with pytest.raises(InvalidQuery):
            normalize_rdtype(bad)


def _spellings() -> list[str]:
    """Every printable ASCII character raw, escaped as \\X and as \\DDD, inside a label, plus
    IDNA and random mixes: the names a differential test feeds every backend."""
    import random
    import string

    names = []
    for char in string.printable.strip() + " ":
        names += [f"a{char}b", f"a\\{char}b", f"a\\{ord(char):03d}b", f"{char}", f"\\{char}"]
    names += ["b\u00fccher", "\uff21", "xn--bcher-kva", "_tcp", "*", "0/26"]
    rng = random.Random(11)
    alphabet = "aZ9-_*/\\.!@$\u00e9\u3002"
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    return [f"{n}.probe.test" for n in names]


def _accepted_names() -> dict[str, str]:
    accepted = {}
    for spelling in _spellings():
        try:
            accepted[spelling] = normalize_name(spelling)
        except InvalidName:
            continue
    return accepted


def test_the_differential_set_is_big_and_mixed():
    accepted = _accepted_names()
    assert len(set(accepted.values())) >= 60
    assert any("\\" in s for s in accepted)
    assert any(c in "".join(accepted.values()) for c in "*/_")


async def test_every_accepted_name_is_accepted_by_cares_and_iterative_query_building():
    """Differential: a name normalize_name accepts never makes c-ares or the iterative
    backend fail to build the query, and the wire carries exactly the canonical name."""
    from asyncresolve import NXDomain, Resolver, ServFail
    from asyncresolve.backends.cares import CaresBackend
    from asyncresolve.backends.iterative import IterativeBackend
    from asyncresolve.testing import DNSLab

    canonical = sorted(set(_accepted_names().values()))
    async with DNSLab({"probe.test.": "www 60 IN A 192.0.2.1"}) as lab:
        stub = f"{lab.stub_server[0]}:{lab.stub_server[1]}"
        async with Resolver([CaresBackend([stub])], cache=None) as cares, \
                Resolver([IterativeBackend(root_hints=lab.root_hints, port=lab.port)]) as iterative:
            for resolver in (cares, iterative):
                failures = {}
                for name in canonical:
                    lab.reset_counters()
                    try:
                        await resolver.resolve(name, "A", timeout=3)
                        failures[name] = "answered"
                    except (NXDomain, ServFail):
                        pass
                    except Exception as exc:  # noqa: BLE001 - any other outcome is reported, name by name
                        failures[name] = repr(exc)
                    seen = {q.name for q in lab.queries if q.type == "A"}
                    if name not in seen:
                        failures.setdefault(name, f"the wire carried {seen}")
                assert not failures, (resolver.backends[0].name, len(failures), dict(list(failures.items())[:5]))


async def test_the_hosts_backend_compares_in_the_canonical_form(tmp_path, scripted):
    from asyncresolve import Resolver
    from asyncresolve.backends.hosts import HostsBackend

    accepted = _accepted_names()
    canonical = sorted(set(accepted.values()))
    path = tmp_path / "hosts"
    path.write_text("".join(f"192.0.2.{i % 250 + 1} {name}\n" for i, name in enumerate(canonical)))
    dns_fallback = scripted(table={(n, "A"): "198.51.100.66" for n in canonical})
    async with Resolver([HostsBackend(str(path)), dns_fallback], cache=None) as r:
        for spelling, name in accepted.items():
            answer = await r.resolve(spelling, "A")
            assert answer.source == "hosts", spelling
            assert answer.name == name, spelling
    assert dns_fallback.calls == []
    # the example: an escaped spelling of a pinned name cannot reach DNS
    path.write_text("203.0.113.5 www.example.com\n")
    dns_fallback = scripted(table={("www.example.com.", "A"): "198.51.100.66"})
    async with Resolver([HostsBackend(str(path)), dns_fallback]) as r:
        assert (await r.resolve("www.example.co\\109")).addresses == ["203.0.113.5"]
        assert (await r.resolve("WWW.EXAMPLE.CO\\077.")).addresses == ["203.0.113.5"]
    assert dns_fallback.calls == []


async def test_escaped_dot_is_invalid_name_through_every_backend_not_a_generic_error():
    """``a\\.`` once reached the iterative backend and came back as a generic ResolveError
    (an internal ValueError); it is InvalidName before any I/O, whatever the chain."""
    from asyncresolve import Resolver
    from asyncresolve.backends.cares import CaresBackend
    from asyncresolve.backends.iterative import IterativeBackend

    iterative = IterativeBackend(root_hints=[("127.0.0.1", 1)], port=1)
    async with Resolver([iterative]) as r1, Resolver([CaresBackend(["127.0.0.1:1"])]) as r2:
        for resolver in (r1, r2):
            for bad in ("a\\.", "a\\.b.test", "a\\\\.test", "x\\000y.test"):
                with pytest.raises(InvalidName):
                    await resolver.resolve(bad, "A")
        with pytest.raises(InvalidName):
            await iterative.resolve_with_trace("a\\.", "A", timeout=1)


_PLAIN_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_*/-", min_size=1, max_size=64)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PLAIN_LABEL, min_size=1, max_size=6), st.booleans())
def test_canonical_names_take_the_short_way_to_the_same_result(labels, final_dot):
    """A name already canonical is returned as it is, without the memo: exactly what the
    full normalisation gives, including its rejections (a label of 64, a name over 253)."""
    from asyncresolve import names

    name = ".".join(labels) + ("." if final_dot else "")
    try:
        expected = names._normalize(name)
    except InvalidName:
        with pytest.raises(InvalidName):
            normalize_name(name)
        return
    names._name_memo.pop(name, None)
    assert normalize_name(name) == expected
    if final_dot:
        assert name not in names._name_memo  # the short way: nothing memoised


def test_the_longest_canonical_name_and_one_over_it():
    name = ".".join(["a" * 63] * 3 + ["b" * 61]) + "."  # 253 characters and the final dot
    assert normalize_name(name) == name
    with pytest.raises(InvalidName):
        normalize_name("b" + name)
    with pytest.raises(InvalidName):
        normalize_name("a" * 64 + ".test.")
