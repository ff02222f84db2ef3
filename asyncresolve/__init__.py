"""asyncresolve: an asyncio DNS resolver with a chain of backends, a TTL cache and coalescing.

Usage::

    import asyncio
    from asyncresolve import Resolver, NXDomain

    async def main():
        async with Resolver(timeout=5.0) as resolver:     # hosts file, the OS, then c-ares
            answer = await resolver.resolve("localhost", "A")
            print(answer.addresses, answer.ttl, answer.source)

    asyncio.run(main())

The API:

* :class:`Resolver` -- the facade: ``resolve(name, rdtype)``, ``resolve_addresses(name)``,
  ``getaddrinfo(host, port)``; a cache (:class:`TTLCache`) in front of request coalescing in
  front of a chain of backends walked by a :class:`FallthroughPolicy`; counters in
  ``resolver.stats`` (:class:`ResolverStats`).
* :class:`Answer` -- the immutable result: ``records``, ``ttl`` (counting down),
  ``source``, ``canonical_name``, ``cname_chain``, ``addresses``.
* Records -- :class:`Record` and one immutable class per type (:class:`ARecord`,
  :class:`AAAARecord`, :class:`CNAMERecord`, :class:`DNAMERecord`, :class:`MXRecord`,
  :class:`NSRecord`, :class:`PTRRecord`, :class:`SOARecord`, :class:`SRVRecord`,
  :class:`TXTRecord`, :class:`CAARecord`, :class:`NAPTRRecord`); any other type is a
  :class:`GenericRecord`.
* Errors -- everything is a :class:`ResolveError`: :class:`NXDomain` and :class:`NoAnswer`
  (both :class:`NegativeAnswer`, with the RFC 2308 ``ttl``), :class:`ResolveTimeout`,
  :class:`ServFail`, :class:`NetworkError`, :class:`InvalidName`, :class:`InvalidQuery`,
  :class:`NoBackend`, :class:`ResolverClosed`.
* Backends -- :mod:`asyncresolve.backends`: ``HostsBackend``, ``SystemBackend`` (the OS's
  getaddrinfo), ``CaresBackend`` (c-ares), ``IterativeBackend`` (from the root servers).
* Testing -- :mod:`asyncresolve.testing` (not imported here): DNS servers and whole DNS
  hierarchies on loopback, and pytest fixtures.
"""

from .answer import Answer
from .cache import TTLCache
from .chain import FallthroughPolicy
from .errors import (
    AddressRefused,
    InvalidName,
    InvalidQuery,
    NegativeAnswer,
    NetworkError,
    NoAnswer,
    NoBackend,
    NXDomain,
    ResolveError,
    ResolverClosed,
    ResolveTimeout,
    ServFail,
)
from .records import (
    AAAARecord,
    ARecord,
    CAARecord,
    CNAMERecord,
    DNAMERecord,
    GenericRecord,
    MXRecord,
    NAPTRRecord,
    NSRecord,
    PTRRecord,
    Record,
    SOARecord,
    SRVRecord,
    TXTRecord,
)
from .resolver import Resolver
from .stats import ResolverStats

__version__ = "0.1.0"

__all__ = [
    "AAAARecord",
    "ARecord",
    "AddressRefused",
    "Answer",
    "CAARecord",
    "CNAMERecord",
    "DNAMERecord",
    "FallthroughPolicy",
    "GenericRecord",
    "InvalidName",
    "InvalidQuery",
    "MXRecord",
    "NAPTRRecord",
    "NSRecord",
    "NXDomain",
    "NegativeAnswer",
    "NetworkError",
    "NoAnswer",
    "NoBackend",
    "PTRRecord",
    "Record",
    "ResolveError",
    "ResolveTimeout",
    "Resolver",
    "ResolverClosed",
    "ResolverStats",
    "SOARecord",
    "SRVRecord",
    "ServFail",
    "TTLCache",
    "TXTRecord",
]
