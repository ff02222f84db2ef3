import pytest

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
        assert result.endswith(".") and result.isascii() and result == result.lower()
        assert len(result) <= 254 and all(0 < len(label) <= 63 for label in result[:-1].split(".") if result != ".")
