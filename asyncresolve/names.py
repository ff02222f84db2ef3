"""Name and record-type normalisation, done once before any I/O.

Names become lower-case, absolute (trailing dot) ASCII; internationalised names go
through IDNA (UTS #46 mapping, via the ``idna`` package). Results are memoised in a
bounded dict so that the cache-hit path pays one dict lookup, not a parse.
"""

from __future__ import annotations

import ipaddress

import dns.rdatatype
import idna

from .errors import InvalidName, InvalidQuery

MAX_NAME_LENGTH = 253  # presentation form without the trailing dot (RFC 1035's 255 on the wire)
MAX_LABEL_LENGTH = 63
_MEMO_LIMIT = 65_536

_name_memo: dict[str, str] = {}
_type_memo: dict[object, str] = {}


def normalize_name(name: object) -> str:
    """Return ``name`` as lower-case absolute ASCII (``"example.com."``), or raise ``InvalidName``."""
    try:
        return _name_memo[name]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    result = _normalize(name)
    if len(_name_memo) >= _MEMO_LIMIT:
        _name_memo.clear()
    _name_memo[name] = result  # type: ignore[index]
    return result


def _normalize(name: object) -> str:
    if isinstance(name, bytes):
        try:
            name = name.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidName(f"name is not ASCII: {name!r}", name=repr(name)) from None
    if not isinstance(name, str):
        raise InvalidName(f"name must be a string, not {type(name).__name__}", name=repr(name))
    if name == ".":
        return "."
    if not name:
        raise InvalidName("empty name", name=name)
    for char in name:
        if char <= " " or char == "\x7f":
            raise InvalidName(f"control or space character {char!r} in name {name!r}", name=name)
    text = name[:-1] if name.endswith(".") else name
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidName(f"not a valid internationalised name: {name!r} ({exc})", name=name) from None
    text = text.lower()
    labels = text.split(".")
    for label in labels:
        if not label:
            raise InvalidName(f"empty label in {name!r}", name=name)
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidName(f"label longer than {MAX_LABEL_LENGTH} bytes in {name!r}", name=name)
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidName(f"name longer than {MAX_NAME_LENGTH} bytes: {name[:40]!r}...", name=name)
    return text + "."


def normalize_rdtype(rdtype: object) -> str:
    """Return the record type's mnemonic (``"AAAA"``) from a string, a number or a dnspython enum."""
    try:
        return _type_memo[rdtype]
    except (KeyError, TypeError):
        pass
    try:
        if isinstance(rdtype, str):
            value = dns.rdatatype.from_text(rdtype.strip().upper())
        elif isinstance(rdtype, int):
            value = dns.rdatatype.RdataType.make(rdtype)
        else:
            raise TypeError
        if dns.rdatatype.is_metatype(value) and value != dns.rdatatype.ANY:
            raise InvalidQuery(f"{dns.rdatatype.to_text(value)} is a meta type, not a query type")
    except (TypeError, ValueError, dns.rdatatype.UnknownRdatatype):
        raise InvalidQuery(f"unknown record type: {rdtype!r}") from None
    result = dns.rdatatype.to_text(value)
    if isinstance(rdtype, (str, int)) and len(_type_memo) < 1024:
        _type_memo[rdtype] = result
    return result


def reverse_name(address: str) -> str:
    """The PTR name of an IPv4 or IPv6 address (``1.0.0.127.in-addr.arpa.``)."""
    try:
        return ipaddress.ip_address(address).reverse_pointer + "."
    except ValueError:
        raise InvalidName(f"not an IP address: {address!r}", name=address) from None


def address_from_reverse_name(name: str) -> str | None:
    """The address a normalised reverse name stands for, or None if it is not one."""
    labels = name.rstrip(".").split(".")
    try:
        if name.endswith(".in-addr.arpa.") and len(labels) == 6:
            return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
        if name.endswith(".ip6.arpa.") and len(labels) == 34:
            nibbles = "".join(reversed(labels[:32]))
            return str(ipaddress.IPv6Address(int(nibbles, 16)))
    except ValueError:
        return None
    return None


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
