"""``BulkResult``: what ``resolve_many`` reports for one (name, type), and its status."""

from __future__ import annotations

from dataclasses import dataclass

from ..answer import Answer
from ..errors import (
    InvalidName,
    InvalidQuery,
    NetworkError,
    NoAnswer,
    NoBackend,
    NXDomain,
    ResolveError,
    ResolverClosed,
    ResolveTimeout,
    ServFail,
)

NOERROR = "NOERROR"
NXDOMAIN = "NXDOMAIN"
NODATA = "NODATA"
SERVFAIL = "SERVFAIL"
REFUSED = "REFUSED"
TIMEOUT = "TIMEOUT"
INVALID = "INVALID"
NETWORK_ERROR = "NETWORK_ERROR"
NO_BACKEND = "NO_BACKEND"
CLOSED = "CLOSED"
ERROR = "ERROR"

#: Statuses retried by default: the server (or the path to it) failed, the name may be fine.
DEFAULT_RETRY_ON = frozenset({TIMEOUT, SERVFAIL, NETWORK_ERROR})
#: Statuses never retried, whatever the caller asks: the DNS gave a final answer.
FINAL_STATUSES = frozenset({NOERROR, NXDOMAIN, NODATA, INVALID, CLOSED})


def status_of(error: BaseException) -> str:
    """The bulk status of a ``ResolveError`` (``ServFail`` keeps its rcode: REFUSED, NOTIMP...)."""
    if isinstance(error, NXDomain):
        return NXDOMAIN
    if isinstance(error, NoAnswer):
        return NODATA
    if isinstance(error, ResolveTimeout):
        return TIMEOUT
    if isinstance(error, ServFail):
        return error.rcode or SERVFAIL
    if isinstance(error, (InvalidName, InvalidQuery)):
        return INVALID
    if isinstance(error, NetworkError):
        return NETWORK_ERROR
    if isinstance(error, NoBackend):
        return NO_BACKEND
    if isinstance(error, ResolverClosed):
        return CLOSED
    return ERROR


@dataclass(slots=True, eq=False)
class BulkResult:
    """One (name, type) of a bulk run, reported once, when it is final.

    ``name`` is the normalised name (or the input as given when it was ``INVALID``);
    ``answer`` is set for ``NOERROR``, ``error`` otherwise. ``source`` is the backend that
    answered (``None`` for a cache hit of a negative answer or an invalid name), ``resolver``
    the upstream server when a pool of servers was used. ``tries`` counts the attempts
    (0 for an invalid name), ``elapsed`` the seconds from the first send to the result.
    ``wildcard`` is True when wildcard detection found the answer equal to its parent
    zone's wildcard answer (None when detection is off).
    """

    name: str
    rdtype: str
    status: str
    answer: Answer | None = None
    error: ResolveError | None = None
    source: str | None = None
    resolver: str | None = None
    tries: int = 0
    elapsed: float = 0.0
    wildcard: bool | None = None

    @property
    def ok(self) -> bool:
        return self.answer is not None

    @property
    def key(self) -> tuple[str, str]:
        """``(name, type)``: what ``--resume`` matches on."""
        return (self.name, self.rdtype)

    def __repr__(self) -> str:
        return (f"<BulkResult {self.name} {self.rdtype} {self.status} tries={self.tries} "
                f"elapsed={self.elapsed * 1000:.1f}ms source={self.source}>")
