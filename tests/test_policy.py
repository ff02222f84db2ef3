"""AddressPolicy: what the SSRF guard refuses, what it lets through, and how hosts are read."""

import ipaddress

import pytest

from asyncresolve import AddressRefused, ResolveError
from asyncresolve.policy import AddressPolicy, embedded_ipv4, parse_ip_host, special_category

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.3.4": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "fd00::1": "private",
    "fc12::1": "private",
    "fec0::1": "private",
    "169.254.169.254": "link-local",  # the cloud metadata service
    "fe80::1": "link-local",
    "100.64.0.1": "cgnat",
    "100.127.255.254": "cgnat",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
    "192.0.2.1": "documentation",
    "2001:db8::1": "documentation",
    "198.18.0.1": "benchmarking",
    "2001::1": "reserved",  # Teredo
    "::127.0.0.1": "reserved",  # IPv4-compatible (deprecated)
}

EMBEDDED = {
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "::ffff:0:127.0.0.1": "loopback",  # IPv4-translated
    "64:ff9b::7f00:1": "loopback",  # NAT64 well-known prefix
    "64:ff9b::a9fe:a9fe": "link-local",
    "2002:7f00:1::1": "loopback",  # 6to4
    "2002:c0a8:101::": "private",
}

ALLOWED = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001::200e",
           "::ffff:93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::1", "100.63.255.255",
           "100.128.0.0", "172.32.0.1", "11.0.0.1", "192.169.0.1"]


@pytest.mark.parametrize(("address", "category"), sorted(REFUSED.items()))
def test_special_addresses_are_refused_with_their_category(address, category):
    policy = AddressPolicy()
    assert policy.refusal(address) == category
    with pytest.raises(AddressRefused) as info:
        policy.check(address, "evil.example")
    assert info.value.address == address
    assert info.value.reason == category
    assert info.value.name == "evil.example"
    assert isinstance(info.value, ResolveError)


@pytest.mark.parametrize(("address", "category"), sorted(EMBEDDED.items()))
def test_ipv6_forms_of_refused_ipv4_are_refused(address, category):
    reason = AddressPolicy().refusal(address)
    assert reason is not None
    assert reason.startswith(category), reason
    assert embedded_ipv4(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_global_addresses_pass(address):
    assert AddressPolicy().allows(address)
    assert special_category(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("host", "expected"), [
    ("0x7f.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
    ("0xa9.254.0xa9fe", "169.254.169.254"),
    ("017700000001", "127.0.0.1"),
    ("1.2.3.4", "1.2.3.4"),
    ("[::1]", "::1"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"),
])
def test_numeric_hosts_are_read_as_inet_aton_reads_them(host, expected):
    # Compared as addresses: Python 3.13 prints IPv4-mapped IPv6 as ::ffff:127.0.0.1.
    assert parse_ip_host(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("host", [
    "example.com", "www.0x7f.example", "127.0.0.1.", "127.0.0.1 extra", "4294967296", "08.1",
    "1.2.3.4.5", "deadbeef", "cafe.bad", "", "::zz", "0x", "1..2",
])
def test_names_and_garbage_are_not_numeric(host):
    assert parse_ip_host(host) is None


def test_allow_list_opens_a_hole_in_a_refused_range():
    policy = AddressPolicy(allow=["127.0.0.2/32", "10.8.0.0/16"])
    assert policy.allows("127.0.0.2")
    assert policy.allows("10.8.3.4")
    assert policy.allows("::ffff:127.0.0.2")  # the mapped form of an allowed address
    assert not policy.allows("127.0.0.1")
    assert not policy.allows("10.9.0.1")


def test_deny_list_refuses_global_addresses_and_beats_the_allow_list():
    policy = AddressPolicy(deny=["93.184.216.0/24"], allow=["93.184.216.34"])
    assert policy.refusal("93.184.216.34") == "denied (93.184.216.0/24)"
    assert not policy.allows("::ffff:93.184.216.35")
    assert not policy.allows("64:ff9b::5db8:d822")  # NAT64 form of 93.184.216.34
    assert policy.allows("93.184.217.1")


def test_per_host_exceptions():
    policy = AddressPolicy(exceptions={"intranet.corp.example.": ["10.0.0.0/8"], "*.lab.internal": "*"})
    assert policy.allows("10.1.1.1", "Intranet.Corp.Example")
    assert not policy.allows("192.168.1.1", "intranet.corp.example")
    assert not policy.allows("10.1.1.1", "www.corp.example")
    assert policy.allows("127.0.0.1", "a.b.lab.internal")
    assert policy.allows("::1", "x.lab.internal")
    assert not policy.allows("127.0.0.1", "lab.internal")
    assert not policy.allows("10.1.1.1")  # no host, no exception


def test_refuse_special_off_leaves_only_the_deny_list():
    policy = AddressPolicy(refuse_special=False, deny=["169.254.0.0/16"])
    assert policy.allows("127.0.0.1")
    assert policy.allows("10.0.0.1")
    assert not policy.allows("169.254.169.254")


def test_filter_drops_refused_addresses_and_refuses_a_name_with_none_left():
    policy = AddressPolicy()
    assert policy.filter("mixed.example", ["127.0.0.1", "93.184.216.34", "::1"]) == ["93.184.216.34"]
    with pytest.raises(AddressRefused) as info:
        policy.filter("internal.example", ["10.0.0.1", "127.0.0.1"])
    assert info.value.address == "10.0.0.1"
    assert info.value.reason == "private"
    assert str(info.value) == "address 10.0.0.1 of internal.example refused by policy: private"
    with pytest.raises(AddressRefused):
        AddressPolicy(refuse_mixed=True).filter("mixed.example", ["93.184.216.34", "127.0.0.1"])


def test_scoped_ipv6_addresses_are_classified():
    assert AddressPolicy().refusal("fe80::1%1") == "link-local"


def test_bad_network_in_a_list_is_a_clear_error():
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        AddressPolicy(allow=["not-a-network"])


def test_scoped_ipv6_addresses_match_the_lists():
    assert AddressPolicy(allow=["fe80::/10"]).allows("fe80::1%1")
    assert not AddressPolicy(refuse_special=False, deny=["fe80::/10"]).allows("fe80::1%1")
