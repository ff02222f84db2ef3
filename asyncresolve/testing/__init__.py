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

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .faults import DEFAULT_POISON, Faults
    from .hierarchy import NameServer
    from .lab import DNSLab
    from .server import Address, AuthServer, QueryRecord
    from .zones import ZoneSet, parse_zone

# Imported on first use, so that loading the pytest plugin (pytest does it in every project
# that has asyncresolve installed) costs nothing until a fixture is used.
_EXPORTS = {
    "DEFAULT_POISON": "faults",
    "Faults": "faults",
    "NameServer": "hierarchy",
    "DNSLab": "lab",
    "Address": "server",
    "AuthServer": "server",
    "QueryRecord": "server",
    "ZoneSet": "zones",
    "parse_zone": "zones",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
