"""Backends: one module per source of answers. ``default_backends()`` builds the default chain."""

from __future__ import annotations

from .base import Backend, NotMine, Query
from .cares import CaresBackend
from .hosts import HostsBackend, parse_hosts
from .native import NativeBackend
from .system import SystemBackend


def default_backends() -> list[Backend]:
    """The default chain: the hosts file and the OS's ``getaddrinfo`` for A/AAAA, then c-ares
    (nameservers from resolv.conf) for every type the OS cannot answer, and for A/AAAA when
    the OS fails transiently."""
    return [HostsBackend(), SystemBackend(), CaresBackend()]


__all__ = [
    "Backend",
    "CaresBackend",
    "HostsBackend",
    "NativeBackend",
    "NotMine",
    "Query",
    "SystemBackend",
    "default_backends",
    "parse_hosts",
]
