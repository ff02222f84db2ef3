"""Test kit: authoritative DNS servers and whole DNS hierarchies on loopback addresses.

Typical use::

    from asyncresolve.testing import DNSLab

    async with DNSLab({"example.test.": "www 60 IN A 192.0.2.10"}) as lab:
        lab.root_hints              # [(ip, port)] for an iterative resolver
        lab.stub_server             # (ip, port) answering for every zone
        lab.server_for("example.test.").faults.drop_rate = 0.3
        lab.queries                 # [(server, name, type, protocol), ...]

See :class:`DNSLab`, :class:`AuthServer` and :class:`Faults`; the pytest
fixtures live in :mod:`asyncresolve.testing.pytest_plugin`.
"""

from .faults import DEFAULT_POISON, Faults
from .hierarchy import NameServer
from .lab import DNSLab
from .server import Address, AuthServer, QueryRecord
from .zones import ZoneSet, parse_zone

__all__ = [
    "DEFAULT_POISON",
    "Address",
    "AuthServer",
    "DNSLab",
    "Faults",
    "NameServer",
    "QueryRecord",
    "ZoneSet",
    "parse_zone",
]
