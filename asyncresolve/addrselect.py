"""Destination address selection as the OS does it, and the address order for connecting.

* ``sort_destinations`` orders addresses by RFC 6724 §6 with the tables glibc uses when
  ``/etc/gai.conf`` says nothing (glibc keeps RFC 3484's precedences: IPv4 below native
  IPv6). Like glibc, the source address for each destination is found by ``connect()`` on
  a UDP socket, which sends no packet; a destination with no route is "unusable" (rule 1)
  and goes last. That is why, on an IPv4-only host, IPv4 comes first.
* ``address_config`` tells which families ``AI_ADDRCONFIG`` keeps: glibc counts every
  configured address except ``127.0.0.1`` and ``::1``.
* ``interleave_families`` gives the Happy Eyeballs order (RFC 8305 §4): the first address
  of the preferred family, then the families alternating.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (network, value) pairs, longest prefix first: glibc's default_labels and default_precedence.
_LABELS: tuple[tuple[ipaddress.IPv6Network, int], ...] = tuple(
    (ipaddress.IPv6Network(net), value) for net, value in (
        ("::1/128", 0), ("::ffff:0:0/96", 4), ("::/96", 3), ("2001::/32", 7), ("2002::/16", 2),
        ("fec0::/10", 5), ("fc00::/7", 6), ("::/0", 1),
    )
)
_PRECEDENCE: tuple[tuple[ipaddress.IPv6Network, int], ...] = tuple(
    (ipaddress.IPv6Network(net), value) for net, value in (
        ("::1/128", 50), ("::ffff:0:0/96", 10), ("::/96", 20), ("2002::/16", 30), ("::/0", 40),
    )
)
_SCOPE_LINK_LOCAL = 2
_SCOPE_SITE_LOCAL = 5
_SCOPE_GLOBAL = 14


def _as_v6(address: IPAddress) -> ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv4Address):
        return ipaddress.IPv6Address("::ffff:" + str(address))
    return address


def _lookup(table: tuple[tuple[ipaddress.IPv6Network, int], ...], address: IPAddress) -> int:
    return _label(address) if table is _LABELS else _precedence(address)


def _table_value(table: tuple[tuple[ipaddress.IPv6Network, int], ...], address: IPAddress) -> int:
    v6 = _as_v6(address)
    for network, value in table:
        if v6 in network:
            return value
    return 1  # unreachable: ::/0 matches everything


# The rules' inputs are pure functions of an address: computed once per address.
@functools.lru_cache(maxsize=4096)
def _label(address: IPAddress) -> int:
    return _table_value(_LABELS, address)


@functools.lru_cache(maxsize=4096)
def _precedence(address: IPAddress) -> int:
    return _table_value(_PRECEDENCE, address)


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


@functools.lru_cache(maxsize=4096)
def _scope(address: IPAddress) -> int:
    if isinstance(address, ipaddress.IPv4Address):
        if address.is_loopback or address.is_link_local:
            return _SCOPE_LINK_LOCAL
        return _SCOPE_GLOBAL
    if address.is_multicast:
        return address.packed[1] & 0x0F
    if address.is_loopback or address.is_link_local:
        return _SCOPE_LINK_LOCAL
    if address.is_site_local:
        return _SCOPE_SITE_LOCAL
    if address.ipv4_mapped is not None:
        return _scope(address.ipv4_mapped)
    return _SCOPE_GLOBAL


def _common_prefix_len(a: ipaddress.IPv6Address, b: ipaddress.IPv6Address) -> int:
    diff = int(a) ^ int(b)
    return 128 - diff.bit_length()


def _matching_prefix(destination: IPAddress, source: IPAddress) -> int:
    if destination.version == 6:
        return _common_prefix_len(_as_v6(destination), _as_v6(source))
    prefixlen = interface_prefixes().get(source if not source.is_loopback else _LOOPBACKS[0], 0)
    if not prefixlen or int(destination) >> (32 - prefixlen) != int(source) >> (32 - prefixlen):
        return 0
    return 32 - (int(destination) ^ int(source)).bit_length()


def _strip_scope(text: str) -> tuple[str, int]:
    """``fe80::1%eth0`` -> (``fe80::1``, interface index); other text unchanged, index 0."""
    if "%" not in text:
        return text, 0
    host, zone = text.split("%", 1)
    if zone.isdigit():
        return host, int(zone)
    try:
        return host, socket.if_nametoindex(zone)
    except OSError:
        return host, 0


def source_address(destination: str) -> IPAddress | None:
    """The source address the OS would use to reach ``destination``; None if it has no route.

    A ``connect()`` on a UDP socket only consults the routing table: no packet is sent.
    """
    host, scope_id = _strip_scope(destination)
    family = socket.AF_INET6 if _parse(host).version == 6 else socket.AF_INET
    sockaddr: tuple[object, ...] = (host, 9, 0, scope_id) if family == socket.AF_INET6 else (host, 9)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(sockaddr)
            return _parse(sock.getsockname()[0])
    except OSError:
        return None


@dataclass(frozen=True)
class _Candidate:
    index: int
    text: str
    address: IPAddress
    source: IPAddress | None


def _compare(a: _Candidate, b: _Candidate) -> int:
    """Negative when ``a`` should be tried before ``b`` (RFC 6724 §6, rules 1, 2, 5, 6, 8, 9, 10)."""
    # Rule 10: leave the order unchanged.
    return _compare_rules(a, b) or a.index - b.index


def compare_destinations(a: str, b: str) -> int:
    """RFC 6724 rules 1-9 for two addresses: negative if ``a`` goes first, positive if ``b``
    does, 0 when the rules leave them tied (their order is then the order they came in)."""
    return _compare_rules(_candidate(0, a), _candidate(1, b))


def _candidate(index: int, text: str) -> _Candidate:
    return _Candidate(index, text, _parse(text), source_address(text))


def _compare_rules(a: _Candidate, b: _Candidate) -> int:
    # Rule 1: avoid unusable destinations.
    if (a.source is None) != (b.source is None):
        return 1 if a.source is None else -1
    if a.source is not None and b.source is not None:
        # Rule 2: prefer matching scope.
        match_a = _scope(a.address) == _scope(a.source)
        match_b = _scope(b.address) == _scope(b.source)
        if match_a != match_b:
            return -1 if match_a else 1
        # Rule 5: prefer matching label.
        match_a = _lookup(_LABELS, a.address) == _lookup(_LABELS, a.source)
        match_b = _lookup(_LABELS, b.address) == _lookup(_LABELS, b.source)
        if match_a != match_b:
            return -1 if match_a else 1
    # Rule 6: prefer higher precedence.
    precedence_a, precedence_b = _lookup(_PRECEDENCE, a.address), _lookup(_PRECEDENCE, b.address)
    if precedence_a != precedence_b:
        return -1 if precedence_a > precedence_b else 1
    # Rule 8: prefer smaller scope.
    scope_a, scope_b = _scope(a.address), _scope(b.address)
    if scope_a != scope_b:
        return -1 if scope_a < scope_b else 1
    # Rule 9: longest matching prefix. For IPv4, as glibc does it, only within the source's
    # subnet (outside it a common prefix means nothing): on-subnet destinations come first.
    if (a.source is not None and b.source is not None and a.address.version == b.address.version
            and a.source.version == b.source.version == a.address.version):
        prefix_a, prefix_b = _matching_prefix(a.address, a.source), _matching_prefix(b.address, b.source)
        if prefix_a != prefix_b:
            return -1 if prefix_a > prefix_b else 1
    return 0


def sort_destinations(addresses: Iterable[str]) -> list[str]:
    """``addresses`` (IPv4/IPv6 text, IPv6 optionally with ``%scope``) in RFC 6724 order.

    Text that is not an IP address raises ``ValueError``. The sort is stable.
    """
    candidates = [_candidate(index, text) for index, text in enumerate(addresses)]
    if len(candidates) < 2:
        return [c.text for c in candidates]
    candidates.sort(key=functools.cmp_to_key(_compare))
    return [c.text for c in candidates]


def interleave_families(addresses: Sequence[str], first_family_count: int = 1) -> list[str]:
    """The Happy Eyeballs order (RFC 8305 §4): keep the sorted order within each family,
    start with ``first_family_count`` addresses of the family of the first address, then
    alternate families."""
    if not addresses:
        return []
    first_is_v6 = ":" in addresses[0]
    first = [a for a in addresses if (":" in a) == first_is_v6]
    other = [a for a in addresses if (":" in a) != first_is_v6]
    result = first[:first_family_count]
    rest_first = first[first_family_count:]
    for i in range(max(len(rest_first), len(other))):
        if i < len(other):
            result.append(other[i])
        if i < len(rest_first):
            result.append(rest_first[i])
    return result


# -- AI_ADDRCONFIG ---------------------------------------------------------------------------

class _SockAddr(ctypes.Structure):
    _fields_ = (("sa_family", ctypes.c_ushort), ("sa_data", ctypes.c_ubyte * 14))


class _SockAddrIn6(ctypes.Structure):
    _fields_ = (("sin6_family", ctypes.c_ushort), ("sin6_port", ctypes.c_ushort),
                ("sin6_flowinfo", ctypes.c_uint32), ("sin6_addr", ctypes.c_ubyte * 16),
                ("sin6_scope_id", ctypes.c_uint32))


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = (
    ("ifa_next", ctypes.POINTER(_IfAddrs)), ("ifa_name", ctypes.c_char_p), ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.POINTER(_SockAddr)), ("ifa_netmask", ctypes.POINTER(_SockAddr)),
    ("ifa_ifu", ctypes.POINTER(_SockAddr)), ("ifa_data", ctypes.c_void_p),
)


def interface_addresses() -> list[IPAddress]:
    """Every address configured on this host's interfaces (``getifaddrs``), or [] where the
    C library does not offer it."""
    return [address for address, _ in _interfaces()]


def _interfaces() -> list[tuple[IPAddress, int]]:
    """(address, prefix length) of every configured address."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        getifaddrs, freeifaddrs = libc.getifaddrs, libc.freeifaddrs
    except (OSError, AttributeError, TypeError):
        return []
    head = ctypes.POINTER(_IfAddrs)()
    if getifaddrs(ctypes.byref(head)) != 0:
        return []
    addresses: list[tuple[IPAddress, int]] = []
    try:
        node = head
        while node:
            entry = node.contents
            if entry.ifa_addr:
                address, mask = _address(entry.ifa_addr), _address(entry.ifa_netmask)
                if address is not None:
                    prefixlen = bin(int(mask)).count("1") if mask is not None else 0
                    addresses.append((address, prefixlen))
            node = entry.ifa_next
    finally:
        freeifaddrs(head)
    return addresses


def _address(pointer: Any) -> IPAddress | None:
    if not pointer:
        return None
    family = pointer.contents.sa_family
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(bytes(pointer.contents.sa_data[2:6]))
    if family == socket.AF_INET6:
        sin6 = ctypes.cast(pointer, ctypes.POINTER(_SockAddrIn6)).contents
        return ipaddress.IPv6Address(bytes(sin6.sin6_addr))
    return None


_prefix_memo: tuple[float, dict[IPAddress, int]] | None = None


def interface_prefixes(max_age: float = 1.0) -> dict[IPAddress, int]:
    """Configured address -> its prefix length (the netmask). Re-read at most every ``max_age`` s."""
    global _prefix_memo
    now = time.monotonic()
    if _prefix_memo is not None and now - _prefix_memo[0] < max_age:
        return _prefix_memo[1]
    table = dict(_interfaces())
    _prefix_memo = (now, table)
    return table


_LOOPBACKS = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))
_config_memo: tuple[float, tuple[bool, bool]] | None = None


def address_config(max_age: float = 1.0) -> tuple[bool, bool]:
    """(has IPv4, has IPv6) as glibc's ``AI_ADDRCONFIG`` sees them: any configured address
    but ``127.0.0.1`` / ``::1`` counts. Re-read at most every ``max_age`` seconds."""
    global _config_memo
    now = time.monotonic()
    if _config_memo is not None and now - _config_memo[0] < max_age:
        return _config_memo[1]
    seen = [a for a in interface_addresses() if a not in _LOOPBACKS]
    result = (any(a.version == 4 for a in seen), any(a.version == 6 for a in seen))
    _config_memo = (now, result)
    return result


def addrconfig_families(family: int) -> tuple[int, ...] | None:
    """The families ``AI_ADDRCONFIG`` leaves for a request of ``family`` (as glibc decides):
    both when neither or both are configured, the configured one otherwise; ``()`` when the
    asked family is not configured at all (glibc then fails with ``EAI_NONAME``)."""
    has_v4, has_v6 = address_config()
    if family == socket.AF_UNSPEC:
        if has_v4 == has_v6:
            return (socket.AF_INET6, socket.AF_INET)
        return (socket.AF_INET,) if has_v4 else (socket.AF_INET6,)
    if (family == socket.AF_INET and not has_v4) or (family == socket.AF_INET6 and not has_v6):
        return ()
    return (family,)


__all__ = [
    "addrconfig_families",
    "address_config",
    "compare_destinations",
    "interface_addresses",
    "interface_prefixes",
    "interleave_families",
    "sort_destinations",
    "source_address",
]
