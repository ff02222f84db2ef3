"""The backend protocol: what a link of the chain must do.

A backend says which record types it can answer (``supports``) and, for a query, either
returns an ``Answer``, raises one of the ``ResolveError`` subclasses, or raises
``NotMine`` to pass the query to the next backend without an opinion (a name absent
from the hosts file, say). What the chain does with each error is the chain's
``FallthroughPolicy``; backends only report what happened.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..names import normalize_name

if TYPE_CHECKING:
    from ..answer import Answer
    from ..cache import TTLCache


class Outcome(Protocol):
    """Where a backend's ``begin`` delivers a lookup's outcome (future-like, never raising):
    the ``Answer`` to ``set_result``, the ``ResolveError`` to ``set_exception`` or to
    ``set_result`` (``asyncresolve.bulk``'s express lane takes either)."""

    def done(self) -> bool: ...

    def set_result(self, outcome: Any) -> None: ...

    def set_exception(self, error: BaseException) -> None: ...


class NotMine(Exception):
    """Raised by a backend that has nothing to say about a query: the chain asks the next one."""


@dataclass(frozen=True, slots=True, init=False)
class Query:
    """One question to a backend. ``name`` is normalised (lower case, trailing dot).

    ``relative`` is True when the user typed the name without its trailing dot: backends
    that read resolv.conf then apply its ``search`` list and ``ndots`` as glibc does; an
    absolute name is never searched. A query made with a name without its trailing dot
    (the resolver's cache key of a relative name) gets the dot and ``relative=True``.
    """

    name: str
    rdtype: str
    deadline: float  # on the event loop's clock (``loop.time()``)
    relative: bool = False

    def __init__(self, name: str, rdtype: str, deadline: float, relative: bool = False) -> None:
        # one per lookup: the slots' setters, where a frozen dataclass's generated __init__
        # goes through object.__setattr__ by name
        if name[-1:] != ".":
            name += "."
            relative = True
        _set_name(self, name)
        _set_rdtype(self, rdtype)
        _set_deadline(self, deadline)
        _set_relative(self, relative)

    def remaining(self) -> float:
        """Seconds left before the deadline (may be negative)."""
        return self.deadline - asyncio.get_running_loop().time()


_set_name = Query.__dict__["name"].__set__
_set_rdtype = Query.__dict__["rdtype"].__set__
_set_deadline = Query.__dict__["deadline"].__set__
_set_relative = Query.__dict__["relative"].__set__

_key_names: dict[object, str] = {}


def key_name(name: object) -> str:
    """The resolver's cache-key name of a name as the user typed it: normalised, and
    without its trailing dot when it was typed relative (``"www"``, searched) so that it
    is another question than ``"www."``. Memoised like ``normalize_name``, so a cache hit
    is one dict lookup and hashes the same string object again. Raises ``InvalidName``."""
    try:
        return _key_names[name]
    except (KeyError, TypeError):
        pass
    normal = normalize_name(name)
    # the ignore below: normalize_name accepted it: a str or bytes
    result = normal if normal == "." or name[-1:] in (".", b".") else normal[:-1]  # type: ignore[index]
    if len(_key_names) >= 65_536:
        _key_names.clear()
    _key_names[name] = result
    return result


class Backend:
    """Base class of every backend. Subclasses set ``name`` and implement ``resolve``."""

    #: Short name shown in ``Answer.source`` and in statistics.
    name: str = "backend"
    #: Record types this backend can answer; ``None`` means every type.
    supported_types: frozenset[str] | None = None
    #: True if ``resolve`` itself ends by ``query.deadline`` (raising ``ResolveTimeout``):
    #: the chain then spares it a timer of its own.
    honours_deadline: bool = False

    def supports(self, rdtype: str) -> bool:
        """Whether the backend can answer this record type (the chain skips it otherwise)."""
        return self.supported_types is None or rdtype in self.supported_types

    def attach(self, cache: TTLCache | None) -> None:
        """Called by the resolver with its shared cache (backends that keep state there use it)."""

    async def resolve(self, query: Query) -> Answer:
        """Answer *query*, raise a ``ResolveError``, or raise ``NotMine`` to pass to the next backend."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release sockets, channels and threads."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
