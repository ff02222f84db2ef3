"""Which addresses a crawler may connect to: the SSRF / DNS-rebinding guard.

``AddressPolicy`` is opt-in. By default it refuses every special-purpose address a fetched
URL could use to reach the crawler's own network: loopback, private (RFC 1918, unique
local), link-local, CGNAT (100.64.0.0/10), multicast, broadcast, unspecified, reserved,
documentation and benchmarking ranges, and the IPv6 forms that carry such an IPv4 address
(IPv4-mapped ``::ffff:127.0.0.1``, IPv4-translated ``::ffff:0:a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``). The integrations check the addresses a name
resolved to and connect only to the ones that passed, so a name cannot pass the check and
then rebind to another address before the connection.

Numeric hosts are read as the C library reads them (``inet_aton``): ``2130706433``,
``0x7f.1`` and ``127.1`` are all 127.0.0.1, and are refused as such.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping

from .errors import AddressRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Most specific first: the first network that holds an address names its category.
_SPECIAL_V4: tuple[tuple[str, str], ...] = (
    ("255.255.255.255/32", "broadcast"),
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_SPECIAL_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/8", "reserved"),  # IPv4-compatible ::a.b.c.d and the rest of the low block
    ("100::/64", "reserved"),  # discard-only
    ("64:ff9b:1::/48", "private"),  # local-use NAT64
    ("2001::/32", "reserved"),  # Teredo
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "reserved"),  # ORCHID
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved"),  # SRv6 SIDs
    ("fc00::/7", "private"),  # unique local
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),  # site-local, deprecated
    ("ff00::/8", "multicast"),
)


def _networks(table: tuple[tuple[str, str], ...]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in table)


_SPECIAL = {4: _networks(_SPECIAL_V4), 6: _networks(_SPECIAL_V6)}
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_INET_ATON_CHARS = re.compile(r"[0-9A-Fa-fXx.]+")


def parse_ip_host(host: str) -> IPAddress | None:
    """The address a numeric host names, as the C library reads it; None for a name.

    IPv6 literals may carry brackets and a ``%zone``. IPv4 is read with ``inet_aton``
    semantics, as ``getaddrinfo`` does: ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and
    ``127.1`` are all 127.0.0.1.
    """
    text = host.strip("[]") if host.startswith("[") else host
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    if not text or not _INET_ATON_CHARS.fullmatch(text) or not text[0].isdigit():
        return None
    try:
        # fullmatch above already refuses the trailing text glibc's inet_aton would ignore.
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to: IPv4-mapped, IPv4-translated, NAT64
    (64:ff9b::/96) and 6to4 forms; None otherwise."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _TRANSLATED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def special_category(address: IPAddress) -> str | None:
    """The special-purpose category of ``address`` (``"loopback"``, ``"private"``,
    ``"link-local"``, ``"cgnat"``, ``"multicast"``, ``"reserved"``...), or None for an
    ordinary global address. IPv6 forms of an IPv4 address take the IPv4 address's."""
    inner = embedded_ipv4(address)
    if inner is not None:
        category = special_category(inner)
        return f"{category} ({inner} embedded)" if category else None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    for network, category in _SPECIAL[address.version]:
        if address in network:
            return category
    return None


def _as_networks(items: Iterable[str | IPNetwork | IPAddress] | str) -> tuple[IPNetwork, ...]:
    if isinstance(items, str):
        items = [items]
    return tuple(ipaddress.ip_network(item, strict=False) if not isinstance(item, (ipaddress.IPv4Network,
                 ipaddress.IPv6Network)) else item for item in items)


def _normal_host(host: str) -> str:
    return host.rstrip(".").lower()


class AddressPolicy:
    """Which addresses may be connected to.

    :param allow: networks always allowed, even inside a refused range (``"10.1.2.0/24"``).
    :param deny: networks always refused, even when global (checked before ``allow``).
    :param exceptions: per host name, the networks that name may use whatever the rest says
        (``{"intranet.corp.example": ["10.0.0.0/8"], "*.lab.internal": "*"}``): a leading
        ``*.`` matches every name below; ``"*"`` allows any address.
    :param refuse_special: refuse the special-purpose ranges (see the module's doc); switch
        it off to use only ``deny``.
    :param refuse_mixed: refuse a name outright if any of its addresses is refused; by
        default the refused addresses are dropped and the others used.

    Every list applies to an IPv6 address and to the IPv4 address it embeds, so a deny of
    ``203.0.113.0/24`` also catches ``::ffff:203.0.113.9``.
    """

    def __init__(
        self,
        *,
        allow: Iterable[str | IPNetwork | IPAddress] = (),
        deny: Iterable[str | IPNetwork | IPAddress] = (),
        exceptions: Mapping[str, Iterable[str | IPNetwork | IPAddress] | str] | None = None,
        refuse_special: bool = True,
        refuse_mixed: bool = False,
    ) -> None:
        self.allow = _as_networks(allow)
        self.deny = _as_networks(deny)
        self.exceptions: dict[str, tuple[IPNetwork, ...]] = {}
        for name, networks in (exceptions or {}).items():
            if networks == "*":
                networks = ["0.0.0.0/0", "::/0"]
            self.exceptions[_normal_host(name)] = _as_networks(networks)
        self.refuse_special = refuse_special
        self.refuse_mixed = refuse_mixed

    def _exception_networks(self, host: str | None) -> tuple[IPNetwork, ...]:
        if not host or not self.exceptions:
            return ()
        name = _normal_host(host)
        found = self.exceptions.get(name, ())
        labels = name.split(".")
        for i in range(1, len(labels)):
            found += self.exceptions.get("*." + ".".join(labels[i:]), ())
        return found

    def refusal(self, address: str | IPAddress, host: str | None = None) -> str | None:
        """Why ``address`` (reached for ``host``) is refused, or None if it is allowed."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        forms: list[IPAddress] = [ip]
        inner = embedded_ipv4(ip)
        if inner is not None:
            forms.append(inner)
        if any(form in net for net in self._exception_networks(host) for form in forms):
            return None
        for net in self.deny:
            if any(form in net for form in forms):
                return f"denied ({net})"
        if any(form in net for net in self.allow for form in forms):
            return None
        if self.refuse_special:
            return special_category(ip)
        return None

    def allows(self, address: str | IPAddress, host: str | None = None) -> bool:
        return self.refusal(address, host) is None

    def check(self, address: str | IPAddress, host: str | None = None) -> None:
        """Raise ``AddressRefused`` unless ``address`` is allowed."""
        reason = self.refusal(address, host)
        if reason is not None:
            raise AddressRefused(name=host, address=str(address), reason=reason)

    def filter(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses of ``host`` that may be used, in their order; ``AddressRefused``
        (naming the first refused address) when none may, or any may not with
        ``refuse_mixed``."""
        allowed: list[str] = []
        first_refused: tuple[str, str] | None = None
        for address in addresses:
            reason = self.refusal(address, host)
            if reason is None:
                allowed.append(address)
            elif first_refused is None:
                first_refused = (address, reason)
        if first_refused is not None and (not allowed or self.refuse_mixed):
            address, reason = first_refused
            raise AddressRefused(name=host, address=address, reason=reason)
        return allowed

    def __repr__(self) -> str:
        return (f"AddressPolicy(allow={[str(n) for n in self.allow]}, deny={[str(n) for n in self.deny]}, "
                f"exceptions={sorted(self.exceptions)}, refuse_special={self.refuse_special}, "
                f"refuse_mixed={self.refuse_mixed})")


__all__ = ["AddressPolicy", "AddressRefused", "embedded_ipv4", "parse_ip_host", "special_category"]
