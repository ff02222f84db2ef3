"""Bulk resolution: ``Resolver.resolve_many`` and the ``asyncresolve bulk`` command.

Modules: ``runner`` (the streaming engine), ``express`` (its lane straight to a backend that
can ``begin`` a lookup without a coroutine), ``result`` (``BulkResult`` and statuses),
``limiter`` (token bucket), ``pool`` (several upstream servers behind one backend),
``wildcards`` (wildcard-zone detection), ``inputs`` / ``writers`` / ``resume`` (the command's
files) and ``progress`` (rich bar, summary, stats file; rich is imported only there).
"""

from .limiter import TokenBucket
from .pool import PoolBackend, Upstream
from .result import (
    DEFAULT_RETRY_ON,
    INVALID,
    NODATA,
    NOERROR,
    NXDOMAIN,
    REFUSED,
    SERVFAIL,
    TIMEOUT,
    BulkResult,
    status_of,
)
from .runner import DEFAULT_CONCURRENCY, DEFAULT_RETRIES, BulkRun, resolve_many
from .wildcards import WildcardDetector
from .writers import to_json

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RETRIES",
    "DEFAULT_RETRY_ON",
    "INVALID",
    "NODATA",
    "NOERROR",
    "NXDOMAIN",
    "REFUSED",
    "SERVFAIL",
    "TIMEOUT",
    "BulkResult",
    "BulkRun",
    "PoolBackend",
    "TokenBucket",
    "Upstream",
    "WildcardDetector",
    "resolve_many",
    "status_of",
    "to_json",
]
