"""asyncresolve: an asyncio DNS resolver with a chain of backends, a TTL cache and coalescing."""

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
