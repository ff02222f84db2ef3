"""``Resolver.getaddrinfo``: the OS's ``getaddrinfo``, with the resolver doing the name lookup.

Everything but the name lookup is the C library's own work, done without I/O:

* the arguments are converted as ``socket.getaddrinfo`` converts them (a ``str`` host with
  the ``idna`` codec, an int port as decimal text...), and a wrong type raises the same
  ``TypeError``/``OSError`` as the stdlib;
* a numeric host (``127.1``, ``0x7f.1``, ``2130706433`` read as ``inet_aton`` reads them,
  ``fe80::1%lo``) is answered by the OS with ``AI_NUMERICHOST``, which never looks anything
  up: so it is never sent to DNS, whatever the chain;
* ports, service names (looked up for each socket type: ``"domain"`` is 53 over TCP and
  UDP, ``"syslog"`` exists only over UDP), socket types, protocols, ``AI_NUMERICSERV`` and
  bad flags are checked by the OS on a numeric stand-in address, before the name lookup
  (glibc's order), and the entries for each address are the ones the OS gives for it;
* ``AI_ADDRCONFIG`` keeps the families glibc would keep (``addrselect.addrconfig_families``)
  and the addresses are ordered by RFC 6724 with glibc's tables (``sort_destinations``).

The name itself goes through the resolver (cache, coalescing, chain). Where the stdlib
raises ``UnicodeError`` for a name its ``idna`` codec cannot encode (``"."``, an empty or
over-long label), this raises ``socket.gaierror(EAI_NONAME)``: every failure to resolve is a
``gaierror``, as code written for ``loop.getaddrinfo`` expects.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import operator
import re
import socket
from typing import TYPE_CHECKING, Any

from .addrselect import addrconfig_families, sort_destinations
from .answer import Answer
from .errors import InvalidName, NegativeAnswer, NoAnswer, NXDomain, ResolveError, ResolveTimeout, ServFail

if TYPE_CHECKING:
    from .resolver import Resolver

AddrInfo = tuple[Any, ...]
_NODATA = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
_NUMERIC_STANDIN: dict[int, str] = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
_TEMPLATE_MEMO_LIMIT = 4096
#: What inet_aton (digits, dots, 0x hex) or inet_pton with a scope (colons, %zone) could
#: read; any other name skips the OS's numeric parse. Names such as ``cafe.be`` still match.
_MAYBE_NUMERIC = re.compile(rb"[0-9a-fA-FxX.]+|.*:.*|.*%.*", re.DOTALL)
_templates_memo: dict[tuple[Any, ...], dict[int, list[tuple[Any, ...]]]] = {}


def host_bytes(host: object) -> bytes | None:
    """The host as ``socket.getaddrinfo`` hands it to the C library."""
    if host is None:
        return None
    if isinstance(host, str):
        try:
            return host.encode("idna")
        except UnicodeError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (not a valid host name)") from None
    if isinstance(host, (bytes, bytearray)):
        return bytes(host)
    raise TypeError(f"getaddrinfo() argument 1 must be string or None, not {type(host).__name__}")


def _check_port(port: object) -> None:
    """Refuse a port as ``socket.getaddrinfo`` converts it (before any lookup)."""
    if port is None or isinstance(port, bytes):
        return
    if isinstance(port, int):
        if not -(2**63) <= port < 2**63:
            raise OverflowError("Python int too large to convert to C long")
    elif isinstance(port, str):
        try:
            port.encode("utf-8")
        except UnicodeError:
            raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype") from None
    else:
        raise OSError("Int or String expected")


def _c_int(value: object) -> int:
    """An argument as ``socket.getaddrinfo`` parses its ints (first of all, like the stdlib)."""
    number = operator.index(value)  # type: ignore[arg-type]  # TypeError, as the stdlib's
    if not -(2**31) <= number < 2**31:
        raise OverflowError("signed integer is out of range for a C int")
    return number


def _templates(port: Any, family: int, socktype: int, proto: int, flags: int
               ) -> dict[int, list[tuple[Any, ...]]]:
    """``{family: [(family, type, proto, port), ...]}``: the entries the OS gives each address
    of the family, found on a numeric stand-in (no lookup: ``AI_NUMERICHOST``). Raises the
    OS's ``gaierror`` for a bad service, socket type, protocol or flag."""
    key = (port, port.__class__, family, socktype, proto, flags)
    cached = _templates_memo.get(key)
    if cached is not None:
        return cached
    families = (socket.AF_INET6, socket.AF_INET) if family == socket.AF_UNSPEC else (family,)
    probe_flags = (flags & ~int(socket.AI_ADDRCONFIG | socket.AI_CANONNAME)) | socket.AI_NUMERICHOST
    result: dict[int, list[tuple[Any, ...]]] = {}
    for fam in families:
        standin = _NUMERIC_STANDIN.get(fam, "127.0.0.1")
        entries = socket.getaddrinfo(standin, port, fam, socktype, proto, probe_flags)
        result[fam] = [(e[0], e[1], e[2], e[4][1]) for e in entries]
    if len(_templates_memo) >= _TEMPLATE_MEMO_LIMIT:
        _templates_memo.clear()
    _templates_memo[key] = result
    return result


async def getaddrinfo(
    resolver: Resolver, host: Any, port: Any, family: int, socktype: int, proto: int, flags: int
) -> list[AddrInfo]:
    family, socktype, proto, flags = (_c_int(v) for v in (family, socktype, proto, flags))
    name = host_bytes(host)
    _check_port(port)
    if name is None:  # no name, no lookup: the OS's passive/loopback addresses
        return await asyncio.get_running_loop().getaddrinfo(
            None, port, family=family, type=socktype, proto=proto, flags=flags)
    if flags & socket.AI_NUMERICHOST or _MAYBE_NUMERIC.fullmatch(name):
        try:
            # A numeric host never needs a lookup: the OS parses it as inet_aton/inet_pton do.
            return socket.getaddrinfo(name, port, family, socktype, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror as error:
            if error.errno != socket.EAI_NONAME or flags & socket.AI_NUMERICHOST:
                raise
    families: tuple[int, ...] = (family,) if family != socket.AF_UNSPEC else (socket.AF_INET6, socket.AF_INET)
    if flags & socket.AI_ADDRCONFIG:
        kept = addrconfig_families(family)
        if not kept:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (no address of that family "
                                                     "is configured: AI_ADDRCONFIG)")
        families = kept
    templates = _templates(port, family, socktype, proto, flags)  # the service is checked before the name
    try:
        text = name.decode("ascii")
    except UnicodeDecodeError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (not ASCII)") from None
    answers = await _lookup(resolver, text, families, family, flags)
    addresses: list[str] = []
    for answer in answers:
        for address in answer.addresses:
            shown = _address_text(address)
            if shown not in addresses:
                addresses.append(shown)
    mapped = family == socket.AF_INET6 and bool(flags & socket.AI_V4MAPPED)
    if mapped:
        addresses = [a if ":" in a else "::ffff:" + a for a in addresses]
    if len(addresses) > 1:
        addresses = sort_destinations(addresses)
    canonical = _canonical_name(answers[0], text) if flags & socket.AI_CANONNAME and answers else ""
    result: list[AddrInfo] = []
    for address in addresses:
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        for entry_family, kind, protocol, number in templates.get(fam, ()):
            sockaddr = (address, number, 0, 0) if entry_family == socket.AF_INET6 else (address, number)
            result.append((entry_family, kind, protocol, canonical, sockaddr))
            canonical = ""  # like the C library: only the first entry carries it
    if not result:
        raise socket.gaierror(_NODATA, "No address associated with hostname")
    return result


@functools.lru_cache(maxsize=4096)
def _address_text(address: str) -> str:
    """The address as the C library prints it (``fd00::8000:0:0:1``, not ``fd00:0:0:0:8000::1``)."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def _canonical_name(answer: Answer, given: str) -> str:
    """What glibc puts in ``ai_canonname``: the end of the CNAME chain; for a DNS name without
    one, the name as asked (servers echo its case); for the hosts file, the line's first name."""
    if answer.cname_chain or answer.source == "hosts":
        return answer.canonical_name.rstrip(".")
    return given[:-1] if given.endswith(".") and given != "." else given


async def _lookup(resolver: Resolver, name: str, families: tuple[int, ...], family: int, flags: int
                  ) -> list[Answer]:
    """A and/or AAAA answers of ``name`` for ``families``, or the ``gaierror`` glibc gives."""
    try:
        if family == socket.AF_INET6 and flags & socket.AI_V4MAPPED:
            return await _v4mapped(resolver, name, flags)
        wanted = families[0] if len(families) == 1 else socket.AF_UNSPEC
        return await resolver._address_answers(name, wanted, None)
    except (ResolveError, ValueError) as error:
        raise gaierror_for(error) from error


async def _v4mapped(resolver: Resolver, name: str, flags: int) -> list[Answer]:
    """AI_V4MAPPED: the AAAA records, and the A records (to be mapped) when there are none
    or when AI_ALL asks for both."""
    answers: list[Answer] = []
    failure: BaseException | None = None
    try:
        answers.append(await resolver.resolve(name, "AAAA"))
    except NoAnswer as error:
        failure = error
    if not answers or flags & socket.AI_ALL:
        try:
            answers.append(await resolver.resolve(name, "A"))
        except NegativeAnswer:
            if not answers:
                raise failure or NoAnswer(name=name, rdtype="A") from None
    return answers


def gaierror_for(error: Exception) -> socket.gaierror:
    """The ``socket.gaierror`` that code written for ``loop.getaddrinfo`` expects."""
    if isinstance(error, (NXDomain, InvalidName, ValueError)):
        return socket.gaierror(socket.EAI_NONAME, f"Name or service not known ({_short(error)})")
    if isinstance(error, NoAnswer):
        return socket.gaierror(_NODATA, f"No address associated with hostname ({_short(error)})")
    if isinstance(error, (ResolveTimeout, ServFail)):
        return socket.gaierror(socket.EAI_AGAIN, f"Temporary failure in name resolution ({_short(error)})")
    if isinstance(error, ResolveError):
        return socket.gaierror(socket.EAI_FAIL, f"Non-recoverable failure in name resolution ({_short(error)})")
    return socket.gaierror(socket.EAI_FAIL, _short(error))


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) <= 200 else text[:200] + "..."
