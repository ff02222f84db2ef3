"""``/etc/resolv.conf`` as glibc reads it, and the search list as glibc applies it.

Reading is blocking file I/O: call ``read_resolv_conf`` in a worker thread (the backends
do). ``search_candidates`` is pure: the names to try, in glibc's order, for a name as the
user typed it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..answer import Answer
from ..errors import InvalidName, NegativeAnswer, NetworkError, NoAnswer, NXDomain, ResolveError, ServFail
from ..names import normalize_name

DEFAULT_PATH = "/etc/resolv.conf"

# glibc's limits (resolv.h): RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY, MAXNS.
MAX_NDOTS = 15
MAX_TIMEOUT = 30
MAX_ATTEMPTS = 5
MAX_NAMESERVERS = 3


@dataclass(frozen=True)
class ResolvConf:
    """What glibc's stub resolver takes from resolv.conf (and ``LOCALDOMAIN``/``RES_OPTIONS``).

    ``search`` holds absolute names (``"corp.example."``); ``"."`` is the root.
    """

    nameservers: tuple[str, ...] = ("127.0.0.1",)
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout: float = 5.0
    attempts: int = 2
    rotate: bool = False
    use_vc: bool = False  # ``options use-vc``: TCP only
    no_tld_query: bool = False  # ``options no-tld-query``: a searched dotless name is not tried as it is


def read_resolv_conf(path: str | os.PathLike[str] = DEFAULT_PATH, *,
                     environ: dict[str, str] | None = None,
                     hostname: str | None = None) -> ResolvConf:
    """Parse resolv.conf like glibc does (blocking: run it in a thread).

    A missing file gives glibc's defaults: the nameserver 127.0.0.1, the search list from
    the host name's domain, ndots 1, timeout 5 s, 2 attempts.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        text = ""
    return parse_resolv_conf(text, environ=os.environ if environ is None else environ,
                             hostname=socket.gethostname() if hostname is None else hostname)


def parse_resolv_conf(text: str, *, environ: dict[str, str] | os._Environ[str] | None = None,
                      hostname: str = "") -> ResolvConf:
    """Parse resolv.conf text as glibc's ``res_init`` does: a line starting with ``;`` or
    ``#`` is a comment (a ``#`` later on a line is not); a keyword counts only at the start
    of a line; the last ``search`` or ``domain`` line wins; ``LOCALDOMAIN`` replaces the
    search list and ``RES_OPTIONS`` adds options; without a search list, the domain of the
    host's name is searched."""
    environ = environ or {}
    nameservers: list[str] = []
    search: list[str] | None = None
    options: list[str] = []
    for line in text.splitlines():
        if line[:1] in (";", "#"):
            continue
        keyword, _, rest = line.replace("\t", " ").partition(" ")
        values = rest.split()
        if not values:
            continue
        if keyword == "nameserver":
            address = _nameserver(values[0])
            if address is not None and len(nameservers) < MAX_NAMESERVERS:
                nameservers.append(address)
        elif keyword == "domain":
            search = values[:1]
        elif keyword == "search":
            search = values
        elif keyword == "options":
            options.extend(values)
    if "LOCALDOMAIN" in environ:
        search = environ["LOCALDOMAIN"].split()
    if not search:
        search = [hostname.split(".", 1)[1]] if "." in hostname.strip(".") else []
    options.extend(environ.get("RES_OPTIONS", "").split())
    ndots, timeout, attempts = 1, 5.0, 2
    flags: set[str] = set()
    for option in options:
        if option.startswith("ndots:"):
            ndots = max(0, min(_atoi(option[6:]), MAX_NDOTS))
        elif option.startswith("timeout:"):
            timeout = float(max(1, min(_atoi(option[8:]), MAX_TIMEOUT)))
        elif option.startswith("attempts:"):
            attempts = max(1, min(_atoi(option[9:]), MAX_ATTEMPTS))
        else:  # glibc compares the option's length only: "rotate" matches "rotatex"
            flags.update(flag for flag in _FLAGS if option.startswith(flag))
    return ResolvConf(
        nameservers=tuple(nameservers) or ("127.0.0.1",),
        search=tuple(dict.fromkeys(d for d in map(_domain, search) if d is not None)),
        ndots=ndots, timeout=timeout, attempts=attempts, rotate="rotate" in flags,
        use_vc="use-vc" in flags, no_tld_query=bool(flags & {"no-tld-query", "no_tld_query"}),
    )


_FLAGS = ("rotate", "use-vc", "no-tld-query", "no_tld_query")


def _nameserver(text: str) -> str | None:
    """glibc's reading of a nameserver address: IPv4 as ``inet_aton`` (``127.1`` too), else
    IPv6 with an optional ``%scope``."""
    try:
        return socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        pass
    return text if _is_address(text) and ":" in text else None


def search_candidates(name: str, search: tuple[str, ...], ndots: int) -> list[str]:
    """The absolute names glibc's ``res_search`` tries for the relative ``name``, in order.

    ``name`` is normalised and absolute (``"www."``) but was typed without the trailing
    dot. As glibc: with at least ``ndots`` dots the name is tried as it is first; then each
    search domain; then the name as it is, if not yet tried. A name that is too long with a
    suffix ends the search there.
    """
    dots = name[:-1].count(".")
    tried_as_is = dots >= ndots
    out = [name] if tried_as_is else []
    for domain in search:
        if domain == ".":
            candidate = name
        else:
            candidate = name + domain
            if len(candidate) - 1 > 253:
                break  # glibc: an error other than "not found" ends the search
        if candidate not in out:
            out.append(candidate)
    if name not in out:
        out.append(name)
    return out


def _domain(text: str) -> str | None:
    try:
        return normalize_name(text)
    except InvalidName:
        return None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _atoi(text: str) -> int:
    """C's ``atoi``, which glibc uses on option values: leading digits, else 0."""
    digits = ""
    for char in text.strip():
        if not (char.isdigit() or (char in "+-" and not digits)):
            break
        digits += char
    try:
        return int(digits)
    except ValueError:
        return 0


async def search(name: str, conf_search: tuple[str, ...], ndots: int,
                 ask: Callable[[str], Awaitable[Answer]], *, no_tld_query: bool = False) -> Answer:
    """Resolve the relative ``name`` through the search list, with glibc's rules
    (``res_nsearch``): ``ask(candidate)`` queries one absolute name.

    NXDOMAIN, NODATA and SERVFAIL go on to the next candidate; a refused connection ends
    at once; any other failure ends the search list (the name as it is is still tried if
    it was not). When nothing answers, the error is the first try's if the name was tried
    as it is first, else NODATA if any candidate had the name, else SERVFAIL if any server
    failed, else the last error. A negative error's ``ttl`` is the least of the negative
    TTLs seen, since any of those names could appear first.
    """
    dots = name[:-1].count(".")
    first_error: ResolveError | None = None
    nodata: ResolveError | None = None
    servfail: ResolveError | None = None
    last: ResolveError | None = None
    negative_ttls: list[int] = []
    tried_as_is = root_on_list = False

    async def attempt(candidate: str) -> Answer | ResolveError:
        try:
            return await ask(candidate)
        except NegativeAnswer as error:
            if error.ttl is not None:
                negative_ttls.append(error.ttl)
            return error
        except ResolveError as error:
            return error

    if dots >= ndots:
        outcome = await attempt(name)
        if isinstance(outcome, Answer):
            return outcome
        first_error = last = outcome
        tried_as_is = True
    for domain in conf_search:
        candidate = name if domain == "." else name + domain
        root_on_list = root_on_list or candidate == name
        if len(candidate) - 1 > 253:
            break
        outcome = await attempt(candidate)
        if isinstance(outcome, Answer):
            return outcome
        last = outcome
        if isinstance(outcome, NetworkError):
            raise _final(outcome, negative_ttls)
        if isinstance(outcome, NoAnswer):
            nodata = nodata or outcome
        elif isinstance(outcome, ServFail) and outcome.rcode == "SERVFAIL":
            servfail = servfail or outcome
        elif not isinstance(outcome, NXDomain):
            break
    searched = bool(conf_search)
    if (dots or not searched or not no_tld_query) and not (tried_as_is or root_on_list):
        outcome = await attempt(name)
        if isinstance(outcome, Answer):
            return outcome
        last = outcome
    error = first_error or nodata or servfail or last
    if error is None:  # no-tld-query and an empty walk: nothing was asked
        error = NXDomain(name=name)
    raise _final(error, negative_ttls)


def _final(error: ResolveError, negative_ttls: list[int]) -> ResolveError:
    if isinstance(error, NegativeAnswer) and negative_ttls:
        error.ttl = min(negative_ttls)
    return error
