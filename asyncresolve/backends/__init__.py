"""Backends: one module per source of answers. ``default_backends()`` builds the default chain."""

from __future__ import annotations

from .base import Backend, NotMine, Query
from .hosts import HostsBackend, parse_hosts
from .system import SystemBackend


def default_backends() -> list[Backend]:
    """The default chain: the hosts file, then the OS's ``getaddrinfo`` (A, AAAA)."""
    return [HostsBackend(), SystemBackend()]


__all__ = [
    "Backend",
    "HostsBackend",
    "NotMine",
    "Query",
    "SystemBackend",
    "default_backends",
    "parse_hosts",
]
