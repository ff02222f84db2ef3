"""Backends: one module per source of answers. ``default_backends()`` builds the default chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend, NotMine, Query
from .cares import CaresBackend
from .hosts import HostsBackend, parse_hosts
from .native import NativeBackend
from .system import SystemBackend

if TYPE_CHECKING:
    from .iterative import IterativeBackend


def __getattr__(name: str) -> object:
    # The iterative resolver is imported on first use: users of the other backends don't pay for it.
    if name == "IterativeBackend":
        from .iterative import IterativeBackend

        return IterativeBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_backends() -> list[Backend]:
    """The default chain, as faithful to the OS as it can be with real TTLs.

    ``HostsBackend()``, then ``SystemBackend(nsswitch="/etc/nsswitch.conf")``, then
    ``CaresBackend()`` configured from ``/etc/resolv.conf`` (nameservers, search, ndots,
    timeout, attempts, rotate). Both files are read at first use, in worker threads.

    When nsswitch.conf's ``hosts:`` line is ``files dns``, the system backend steps aside:
    A/AAAA come from the hosts file then c-ares, the same answers as ``getaddrinfo`` with
    real TTLs. With other sources (``mdns4_minimal``, ``resolve``, ``myhostname``...), the
    system backend answers A/AAAA as the OS does (``answer.ttl_known`` is False) and c-ares
    answers the other types, and A/AAAA when the OS fails transiently.
    """
    return [HostsBackend(), SystemBackend(nsswitch="/etc/nsswitch.conf"), CaresBackend()]


__all__ = [
    "Backend",
    "CaresBackend",
    "HostsBackend",
    "IterativeBackend",
    "NativeBackend",
    "NotMine",
    "Query",
    "SystemBackend",
    "default_backends",
    "parse_hosts",
]
