"""Backends: one module per source of answers. ``default_backends()`` builds the default chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend, NotMine, Query
from .cares import CaresBackend
from .hosts import HostsBackend, parse_hosts
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
    """The default chain: the hosts file and the OS's ``getaddrinfo`` for A/AAAA, then c-ares
    (nameservers from resolv.conf) for every type the OS cannot answer, and for A/AAAA when
    the OS fails transiently."""
    return [HostsBackend(), SystemBackend(), CaresBackend()]


__all__ = [
    "Backend",
    "CaresBackend",
    "HostsBackend",
    "IterativeBackend",
    "NotMine",
    "Query",
    "SystemBackend",
    "default_backends",
    "parse_hosts",
]
