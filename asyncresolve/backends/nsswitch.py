"""``/etc/nsswitch.conf``'s ``hosts:`` line and ``/etc/host.conf``'s ``multi``, as glibc reads them.

Blocking file reads: call ``read_hosts_sources`` and ``read_host_conf_multi`` in a worker
thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_NSSWITCH = "/etc/nsswitch.conf"
DEFAULT_HOST_CONF = "/etc/host.conf"


@dataclass(frozen=True)
class Source:
    """One service of a database line: its name and the ``[STATUS=action]`` items after it."""

    name: str
    actions: tuple[str, ...] = ()


def parse_hosts_sources(text: str) -> tuple[Source, ...] | None:
    """The services of the ``hosts:`` line, in order; None if there is no such line."""
    found: tuple[Source, ...] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        database, colon, rest = line.partition(":")
        if not colon or database.strip().lower() != "hosts":
            continue
        found = tuple(_services(rest))  # glibc keeps the first; a later one is ignored
        break
    return found


def _services(text: str) -> list[Source]:
    services: list[Source] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text[i] == "[":
            end = text.find("]", i)
            end = len(text) if end < 0 else end
            action = "".join(text[i + 1:end].split()).lower()
            if services and action:
                last = services[-1]
                services[-1] = Source(last.name, (*last.actions, action))
            i = end + 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] != "[":
                i += 1
            services.append(Source(text[start:i]))
    return services


def read_hosts_sources(path: str | os.PathLike[str] = DEFAULT_NSSWITCH) -> tuple[Source, ...] | None:
    """The ``hosts:`` services of an nsswitch.conf; None if the file or the line is missing
    (glibc then uses a built-in default)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return parse_hosts_sources(handle.read())
    except OSError:
        return None


def files_and_dns_only(sources: tuple[Source, ...] | None) -> bool:
    """True when the OS answers host names from the hosts file then DNS and nothing else:
    ``hosts: files dns`` (actions allowed only after the last service, where they change
    nothing). Anything else (other services, ``dns`` first, actions between, no line at
    all) means the OS may see names that DNS and the hosts file do not."""
    if sources is None:
        return False
    names = [s.name.lower() for s in sources]
    if names != ["files", "dns"]:
        return False
    return not sources[0].actions


def parse_host_conf_multi(text: str) -> bool:
    """glibc's ``multi`` flag of host.conf: the hosts file returns every line of a name
    (``on``) or only the first (``off``, the default)."""
    multi = False
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0].lower() == "multi":
            multi = fields[1].lower() == "on"
    return multi


def read_host_conf_multi(path: str | os.PathLike[str] = DEFAULT_HOST_CONF,
                         environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """``multi`` from host.conf, overridden by the ``RESOLV_MULTI`` environment variable."""
    environ = os.environ if environ is None else environ
    override = environ.get("RESOLV_MULTI")
    if override is not None:
        return override.strip().lower() == "on"
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return parse_host_conf_multi(handle.read())
    except OSError:
        return False
