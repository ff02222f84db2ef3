"""Name and record-type normalisation, done once before any I/O.

Every backend sees one canonical name form: lower-case, absolute (trailing dot) ASCII whose
labels hold only letters, digits, ``-``, ``_``, ``*`` and ``/`` (the characters c-ares
accepts in a question; ``/`` for RFC 2317 reverse zones). Presentation escapes are decoded
first (``\\109`` is ``m``, ``\\-`` is ``-``), so ``www.example.co\\109`` and
``www.example.com`` are the same name everywhere, the hosts file included; an escape that
decodes to anything outside that alphabet (``a\\.b``, ``\\000``, a byte over 127) raises
``InvalidName``. Internationalised names go through IDNA (UTS #46 mapping, via the ``idna``
package). Results are memoised in bounded dicts so that the cache-hit path pays one dict
lookup, not a parse.
"""

from __future__ import annotations

import ipaddress
import numbers
import re

import dns.rdatatype
import idna

from .errors import InvalidName, InvalidQuery

MAX_NAME_LENGTH = 253  # presentation form without the trailing dot (RFC 1035's 255 on the wire)
MAX_LABEL_LENGTH = 63
#: How much of a rejected name or type an error message quotes.
MAX_QUOTED = 80
_MEMO_LIMIT = 65_536

#: Canonical name -> itself, and every spelling seen -> its canonical name. Only ``str`` keys.
_name_memo: dict[str, str] = {}
#: Record type given as text -> mnemonic. Only ``str`` keys: a number never equals a key, so
#: ``1.0`` or ``True`` cannot pass for ``1`` through the resolver's memo lookup.
_type_memo: dict[object, str] = {}
_number_memo: dict[int, str] = {}

_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_*/")
_PLAIN_NAME = re.compile(r"(?:[a-z0-9_*/-]{1,63}\.)*[a-z0-9_*/-]{1,63}\.?")
_plain_name = _PLAIN_NAME.fullmatch


def quoted(value: object, limit: int = MAX_QUOTED) -> str:
    """``repr(value)``, cut to about ``limit`` characters: error messages stay short."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit + 20 else text[: limit + 20] + "..."


def normalize_name(name: object) -> str:
    """Return ``name`` in canonical form (``"example.com."``), or raise ``InvalidName``.

    The single entry point every backend and the hosts file use, so that names compare equal
    exactly when DNS would treat them as the same name.
    """
    try:
        return _name_memo[name]  # type: ignore[index]  # any object is tried: only a known str hits, the rest misses
    except (KeyError, TypeError):
        pass
    if name.__class__ is str and name[-1:] == "." and len(name) <= MAX_NAME_LENGTH + 1 and (
            _plain_name(name) is not None):
        # Already canonical (lower-case plain labels, final dot): what _normalize would return.
        # Not memoised: a bulk run's names, each seen once, would only churn the memo.
        return name
    result = _normalize(name)
    if isinstance(name, str):
        if len(_name_memo) >= _MEMO_LIMIT:
            _name_memo.clear()
        _name_memo[name] = result
    return result


def _invalid(message: str, name: object) -> InvalidName:
    return InvalidName(message, name=quoted(name) if not isinstance(name, str) or len(name) > MAX_QUOTED else name)


def _normalize(name: object) -> str:
    if isinstance(name, bytes):
        try:
            text = name.decode("ascii")
        except UnicodeDecodeError:
            raise _invalid(f"name is not ASCII: {quoted(name)}", name) from None
    elif isinstance(name, str):
        text = name
    else:
        raise _invalid(f"name must be a string, not {type(name).__name__}", name)
    if text == ".":
        return "."
    if not text:
        raise _invalid("empty name", name)
    if len(text) > 4 * (MAX_NAME_LENGTH + 2):  # even fully escaped it cannot fit: spare the parse
        raise _invalid(f"name longer than {MAX_NAME_LENGTH} characters: {quoted(text)}", name)
    lowered = text.lower()
    if text.isascii() and _PLAIN_NAME.fullmatch(lowered):
        canonical = lowered[:-1] if lowered.endswith(".") else lowered
    else:
        canonical = ".".join(_labels(text, name))
    if len(canonical) > MAX_NAME_LENGTH:
        raise _invalid(f"name longer than {MAX_NAME_LENGTH} characters: {quoted(text)}", name)
    return canonical + "."


def _labels(text: str, name: object) -> list[str]:
    """Split ``text`` into canonical labels: escapes decoded, IDNA applied, alphabet checked."""
    if not text.isascii():
        try:
            text = idna.uts46_remap(text, std3_rules=False, transitional=False)
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            raise _invalid(f"not a valid internationalised name: {quoted(name)} ({exc})", name) from None
    labels: list[str] = []
    current: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        index += 1
        if char == ".":
            if not current:
                raise _invalid(f"empty label in {quoted(name)}", name)
            labels.append("".join(current))
            current = []
        elif char == "\\":
            if index >= length:
                raise _invalid(f"name ends with a lone backslash: {quoted(name)}", name)
            if text[index : index + 3].isdigit() and len(text[index : index + 3]) == 3:
                value = int(text[index : index + 3])
                index += 3
                if value > 127:
                    raise _invalid(f"escape \\{value:03d} is not an ASCII character in {quoted(name)}", name)
                decoded = chr(value)
            else:
                decoded = text[index]
                index += 1
            if decoded.lower() not in _LABEL_CHARS:
                raise _invalid(f"character {decoded!r} (escaped) is not allowed in a name: {quoted(name)}", name)
            current.append(decoded)
        else:
            current.append(char)
    if current:
        labels.append("".join(current))
    if not labels:
        raise _invalid(f"empty label in {quoted(name)}", name)
    return [_canonical_label(label, name) for label in labels]


def _canonical_label(label: str, name: object) -> str:
    if not label.isascii():
        try:
            label = idna.encode(label, uts46=True, std3_rules=False).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            raise _invalid(f"not a valid internationalised name: {quoted(name)} ({exc})", name) from None
    label = label.lower()
    for char in label:
        if char not in _LABEL_CHARS:
            kind = "control or space character" if char <= " " or char == "\x7f" else "character"
            raise _invalid(f"{kind} {char!r} is not allowed in a name: {quoted(name)}", name)
    if len(label) > MAX_LABEL_LENGTH:
        raise _invalid(f"label longer than {MAX_LABEL_LENGTH} characters in {quoted(name)}", name)
    return label


def normalize_rdtype(rdtype: object) -> str:
    """Return the record type's mnemonic (``"AAAA"``) from a mnemonic (``"mx"``), a number
    (``15``), a number as text (``"15"``, ``"TYPE15"``) or a dnspython enum.

    Raises ``InvalidQuery`` for anything else, for type 0 and for meta types (OPT, AXFR...)
    but ``ANY``.
    """
    try:
        if rdtype.__class__ is str:
            return _type_memo[rdtype]
        if isinstance(rdtype, int) and not isinstance(rdtype, bool):
            return _number_memo[rdtype]
    except KeyError:
        pass
    if isinstance(rdtype, str):
        text = rdtype.strip()
        value = _parse_type_text(text, rdtype)
    elif isinstance(rdtype, int) and not isinstance(rdtype, bool):
        value = _check_type_number(int(rdtype), rdtype)
    else:
        raise InvalidQuery(f"record type must be a string or an integer, not {type(rdtype).__name__}")
    result = dns.rdatatype.to_text(value)
    if rdtype.__class__ is str:
        if len(_type_memo) < 1024:
            _type_memo[rdtype] = result
    elif isinstance(rdtype, int) and len(_number_memo) < 1024:
        _number_memo[int(rdtype)] = result
    return result


def _parse_type_text(text: str, given: object) -> dns.rdatatype.RdataType:
    if text.isdigit() and text.isascii():
        if len(text) > 5:
            raise InvalidQuery(f"record type out of range (1-65535): {quoted(given)}")
        return _check_type_number(int(text), given)
    try:
        value = dns.rdatatype.from_text(text.upper())
    except (ValueError, dns.rdatatype.UnknownRdatatype):
        raise InvalidQuery(f"unknown record type: {quoted(given)}") from None
    return _check_type_number(int(value), given)


def _check_type_number(number: int, given: object) -> dns.rdatatype.RdataType:
    if not 0 < number <= 65535:
        raise InvalidQuery(f"record type out of range (1-65535): {quoted(given)}")
    value = dns.rdatatype.RdataType.make(number)
    if dns.rdatatype.is_metatype(value) and value != dns.rdatatype.ANY:
        raise InvalidQuery(f"{dns.rdatatype.to_text(value)} is a meta type, not a query type")
    return value


#: The longest deadline a caller may ask for, in seconds (a day): beyond it a number is a bug.
MAX_TIMEOUT = 86_400.0


def validate_timeout(timeout: object) -> float:
    """``timeout`` as a float in (0, MAX_TIMEOUT], or ``InvalidQuery`` (strings, ``None``,
    booleans, NaN, infinities, zero, negatives, huge values)."""
    if timeout.__class__ is not float:
        if timeout.__class__ is not int and (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real)):
            raise InvalidQuery(f"timeout must be a number of seconds, not {type(timeout).__name__}")
        try:
            timeout = float(timeout)
        except (OverflowError, ValueError, TypeError):
            raise InvalidQuery(f"timeout is not a usable number of seconds: {quoted(timeout)}") from None
    if not 0.0 < timeout <= MAX_TIMEOUT:
        raise InvalidQuery(f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds, not {timeout!r}")
    return timeout


def reverse_name(address: str) -> str:
    """The PTR name of an IPv4 or IPv6 address (``1.0.0.127.in-addr.arpa.``)."""
    try:
        return ipaddress.ip_address(address).reverse_pointer + "."
    except ValueError:
        raise InvalidName(f"not an IP address: {quoted(address)}", name=quoted(address)) from None


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
