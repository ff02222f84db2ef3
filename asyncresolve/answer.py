"""``Answer``: the immutable result of one query, with a TTL that counts down."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .records import AAAARecord, ARecord, CNAMERecord, Record

Clock = Callable[[], float]


def _aged(records: tuple[Record, ...], age: int, cap: int) -> tuple[Record, ...]:
    # apart from ``Answer.records``: a generator there made its variables closure cells on
    # every call, the common one (an answer just received) included
    return tuple(r.with_ttl(max(0, min(r.ttl - age, cap))) for r in records)


class Answer:
    """The records of one (name, type) query.

    ``records`` holds the records of the asked type; ``cname_chain`` the CNAME records
    that led to them, so ``canonical_name`` is the owner of ``records``. ``ttl`` is the
    remaining lifetime in seconds: it counts down while the answer sits in a cache, and
    so do the ``ttl`` of the records that ``records`` returns.

    ``ttl_known`` is False when the source reports no TTL (the OS's ``getaddrinfo``, the
    hosts file): ``ttl`` is then the lifetime the backend was configured to give its
    answers, not a TTL from DNS.
    """

    __slots__ = (
        "_clock",
        "_expires_at",
        "_received_at",
        "_records",
        "canonical_name",
        "cname_chain",
        "from_cache",
        "name",
        "rdtype",
        "source",
        "ttl_known",
    )

    name: str
    rdtype: str
    source: str
    canonical_name: str
    cname_chain: tuple[CNAMERecord, ...]
    from_cache: bool
    ttl_known: bool
    _records: tuple[Record, ...]
    _received_at: float
    _expires_at: float
    _clock: Clock

    def __init__(
        self,
        name: str,
        rdtype: str,
        records: Sequence[Record],
        source: str,
        *,
        cname_chain: Sequence[CNAMERecord] = (),
        canonical_name: str | None = None,
        ttl: int | None = None,
        clock: Clock = time.monotonic,
        received_at: float | None = None,
        from_cache: bool = False,
        ttl_known: bool = True,
    ) -> None:
        records = tuple(records)
        chain = tuple(cname_chain)
        if not records:
            raise ValueError("an Answer needs at least one record; use NoAnswer for NODATA")
        if canonical_name is None:
            canonical_name = chain[-1].target if chain else records[0].name
        if ttl is None:
            ttl = min([r.ttl for r in records]) if len(records) > 1 else records[0].ttl
            if chain:
                ttl = min(ttl, min([r.ttl for r in chain]))
        now = clock() if received_at is None else received_at
        # the slots' own descriptors: an Answer is built once per lookup, and these skip the
        # attribute lookup by name that ``object.__setattr__`` does
        _NAME(self, name)
        _RDTYPE(self, rdtype)
        _SOURCE(self, source)
        _CANONICAL_NAME(self, canonical_name)
        _CNAME_CHAIN(self, chain)
        _FROM_CACHE_SET(self, from_cache)
        _TTL_KNOWN(self, ttl_known)
        _RECORDS(self, records)
        _RECEIVED_AT(self, now)
        _EXPIRES_AT(self, now + ttl if ttl > 0 else now)
        _CLOCK(self, clock)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Answer is immutable")

    def __delattr__(self, key: str) -> None:
        raise AttributeError("Answer is immutable")

    # -- time -------------------------------------------------------------------
    @property
    def ttl(self) -> int:
        """Remaining seconds before this answer expires (0 once expired)."""
        return max(0, math.ceil(self._expires_at - self._clock()))

    @property
    def age(self) -> float:
        """Seconds since the answer was received (on the answer's clock)."""
        return max(0.0, self._clock() - self._received_at)

    @property
    def expires_at(self) -> float:
        """Expiry time on the answer's clock (``time.monotonic`` unless one was injected)."""
        return self._expires_at

    @property
    def original_ttl(self) -> int:
        """The TTL the answer had when it was received."""
        return round(self._expires_at - self._received_at)

    @property
    def records(self) -> tuple[Record, ...]:
        """The records of the asked type, their TTLs counted down by the answer's age."""
        age = int(self._clock() - self._received_at)
        if age <= 0:
            return self._records
        return _aged(self._records, age, self.ttl)

    # -- conveniences -----------------------------------------------------------
    @property
    def addresses(self) -> list[str]:
        """The addresses of A/AAAA records (empty for other types)."""
        return [r.address for r in self._records if isinstance(r, (ARecord, AAAARecord))]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self._records)

    def replace(self, **changes: Any) -> Answer:
        """A copy with some fields changed (the cache uses it to re-time an answer)."""
        fields: dict[str, Any] = {
            "records": self._records,
            "source": self.source,
            "cname_chain": self.cname_chain,
            "canonical_name": self.canonical_name,
            "ttl": self.original_ttl,
            "clock": self._clock,
            "received_at": self._received_at,
            "from_cache": self.from_cache,
            "ttl_known": self.ttl_known,
        }
        fields.update(changes)
        return Answer(self.name, self.rdtype, **fields)

    def cached_copy(self) -> Answer:
        """The same answer marked ``from_cache`` (what the cache hands out on hits)."""
        twin = _new(Answer)
        _NAME(twin, self.name)
        _RDTYPE(twin, self.rdtype)
        _SOURCE(twin, self.source)
        _CANONICAL_NAME(twin, self.canonical_name)
        _CNAME_CHAIN(twin, self.cname_chain)
        _FROM_CACHE_SET(twin, True)
        _TTL_KNOWN(twin, self.ttl_known)
        _RECORDS(twin, self._records)
        _RECEIVED_AT(twin, self._received_at)
        _EXPIRES_AT(twin, self._expires_at)
        _CLOCK(twin, self._clock)
        return twin

    def to_dict(self) -> dict[str, Any]:
        """The answer as JSON-ready data (what ``asyncresolve lookup --json`` prints)."""
        return {
            "name": self.name,
            "type": self.rdtype,
            "ttl": self.ttl,
            "ttl_known": self.ttl_known,
            "source": self.source,
            "from_cache": self.from_cache,
            "canonical_name": self.canonical_name,
            "cname_chain": [r.to_dict() for r in self.cname_chain],
            "records": [r.to_dict() for r in self.records],
        }

    def __repr__(self) -> str:
        data = ", ".join(r.text for r in self._records[:4])
        more = ", ..." if len(self._records) > 4 else ""
        ttl = f"{self.ttl}" if self.ttl_known else f"{self.ttl} (not known)"
        return f"<Answer {self.name} {self.rdtype} [{data}{more}] ttl={ttl} source={self.source}>"


# Setters of Answer's slots (their member descriptors' ``__set__``): ``__init__`` and
# ``cached_copy`` run once or twice per lookup, and ``__setattr__`` is closed to everyone else.
_NAME = Answer.__dict__["name"].__set__
_RDTYPE = Answer.__dict__["rdtype"].__set__
_SOURCE = Answer.__dict__["source"].__set__
_CANONICAL_NAME = Answer.__dict__["canonical_name"].__set__
_CNAME_CHAIN = Answer.__dict__["cname_chain"].__set__
_FROM_CACHE_SET = Answer.__dict__["from_cache"].__set__
_TTL_KNOWN = Answer.__dict__["ttl_known"].__set__
_RECORDS = Answer.__dict__["_records"].__set__
_RECEIVED_AT = Answer.__dict__["_received_at"].__set__
_EXPIRES_AT = Answer.__dict__["_expires_at"].__set__
_CLOCK = Answer.__dict__["_clock"].__set__
_new = object.__new__
_monotonic = time.monotonic  # the constructor's default clock


def direct_answer(name: str, rdtype: str, records: tuple[Record, ...], source: str, ttl: int) -> Answer:
    """``Answer(name, rdtype, records, source)`` for a non-empty tuple of ``records`` owned by
    ``name`` whose smallest TTL is ``ttl``, with no CNAME chain and the default clock: the
    same answer without the general constructor's defaults and checks (the native backend's
    usual reply, one per name of a bulk run)."""
    answer = _new(Answer)
    now = _monotonic()
    _NAME(answer, name)
    _RDTYPE(answer, rdtype)
    _SOURCE(answer, source)
    _CANONICAL_NAME(answer, name)
    _CNAME_CHAIN(answer, ())
    _FROM_CACHE_SET(answer, False)
    _TTL_KNOWN(answer, True)
    _RECORDS(answer, records)
    _RECEIVED_AT(answer, now)
    _EXPIRES_AT(answer, now + ttl if ttl > 0 else now)
    _CLOCK(answer, _monotonic)
    return answer
