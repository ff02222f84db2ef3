"""RFC 6724 destination ordering, Happy Eyeballs interleaving and AI_ADDRCONFIG's families."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from asyncresolve import addrselect


def _sources(mapping: dict[str, str | None]):
    def source(destination: str):
        value = mapping[destination]
        return None if value is None else ipaddress.ip_address(value)
    return source


def test_ipv4_only_host_puts_ipv4_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # No IPv6 route: the IPv6 destination is unusable (rule 1) although its precedence is higher.
    monkeypatch.setattr(addrselect, "source_address", _sources({"2001:db8::1": None, "192.0.2.1": "192.0.2.2"}))
    assert addrselect.sort_destinations(["2001:db8::1", "192.0.2.1"]) == ["192.0.2.1", "2001:db8::1"]


def test_dual_stack_host_prefers_native_ipv6(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addrselect, "source_address", _sources({
        "2a00::1": "2a01::2", "198.51.100.1": "192.0.2.2"}))
    assert addrselect.sort_destinations(["198.51.100.1", "2a00::1"]) == ["2a00::1", "198.51.100.1"]


def test_ula_source_prefers_ipv4_for_global_ipv6(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule 5: a ULA source's label (fc00::/7) does not match a global destination's.
    monkeypatch.setattr(addrselect, "source_address", _sources({
        "2a00::1": "fd00::2", "198.51.100.1": "192.0.2.2"}))
    assert addrselect.sort_destinations(["2a00::1", "198.51.100.1"]) == ["198.51.100.1", "2a00::1"]


def _prefixes(mapping: dict[str, int]):
    table = {ipaddress.ip_address(a): n for a, n in mapping.items()}
    return lambda max_age=1.0: table


def test_loopback_first_and_order_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addrselect, "source_address", _sources({
        "198.51.100.7": "192.0.2.2", "198.51.100.9": "192.0.2.2", "::1": "::1", "127.0.0.1": "127.0.0.1"}))
    monkeypatch.setattr(addrselect, "interface_prefixes", _prefixes({"192.0.2.2": 24, "127.0.0.1": 8}))
    assert addrselect.sort_destinations(["198.51.100.9", "127.0.0.1", "198.51.100.7", "::1"]) == [
        "::1", "127.0.0.1", "198.51.100.9", "198.51.100.7"]


def test_ipv4_on_the_source_subnet_first_longest_prefix_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc's rule 9 for IPv4 (measured against it in test_getaddrinfo_os): destinations in the
    source's subnet first, by longest common prefix; outside it, the order is kept."""
    sources = {a: "192.0.2.2" for a in ("203.0.113.9", "192.0.2.200", "198.51.100.7", "192.0.2.77", "192.0.2.3")}
    monkeypatch.setattr(addrselect, "source_address", _sources(sources))
    monkeypatch.setattr(addrselect, "interface_prefixes", _prefixes({"192.0.2.2": 24}))
    assert addrselect.sort_destinations(["203.0.113.9", "192.0.2.200", "198.51.100.7", "192.0.2.77", "192.0.2.3"]) \
        == ["192.0.2.3", "192.0.2.77", "192.0.2.200", "203.0.113.9", "198.51.100.7"]
    # a /16 makes 192.0.2.x and 192.0.3.x one subnet
    monkeypatch.setattr(addrselect, "source_address", _sources({"192.0.3.1": "192.0.2.2", "192.1.0.1": "192.0.2.2"}))
    monkeypatch.setattr(addrselect, "interface_prefixes", _prefixes({"192.0.2.2": 16}))
    assert addrselect.sort_destinations(["192.1.0.1", "192.0.3.1"]) == ["192.0.3.1", "192.1.0.1"]


def test_longest_prefix_only_for_ipv6(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addrselect, "source_address", _sources({
        "2a00:1::1": "2a00:2::2", "2a00:2::1": "2a00:2::2"}))
    assert addrselect.sort_destinations(["2a00:1::1", "2a00:2::1"]) == ["2a00:2::1", "2a00:1::1"]


def test_real_routing_table_without_packets() -> None:
    # Loopback always has a route; the call only consults the routing table.
    assert addrselect.source_address("127.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert addrselect.sort_destinations(["127.0.0.1"]) == ["127.0.0.1"]
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        addrselect.sort_destinations(["not-an-address", "127.0.0.1"])


def test_interleave_families() -> None:
    assert addrselect.interleave_families(["::1", "::2", "::3", "127.0.0.1", "127.0.0.2"]) == [
        "::1", "127.0.0.1", "::2", "127.0.0.2", "::3"]
    assert addrselect.interleave_families(["127.0.0.1", "127.0.0.2"]) == ["127.0.0.1", "127.0.0.2"]
    assert addrselect.interleave_families([]) == []


def test_addrconfig_families_follow_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {(True, True): (socket.AF_INET6, socket.AF_INET), (True, False): (socket.AF_INET,),
             (False, True): (socket.AF_INET6,), (False, False): (socket.AF_INET6, socket.AF_INET)}
    for config, unspec in cases.items():
        monkeypatch.setattr(addrselect, "address_config", lambda config=config: config)
        assert addrselect.addrconfig_families(socket.AF_UNSPEC) == unspec
        assert addrselect.addrconfig_families(socket.AF_INET) == ((socket.AF_INET,) if config[0] else ())
        assert addrselect.addrconfig_families(socket.AF_INET6) == ((socket.AF_INET6,) if config[1] else ())


def test_interface_addresses_include_loopback() -> None:
    assert ipaddress.ip_address("127.0.0.1") in addrselect.interface_addresses()
