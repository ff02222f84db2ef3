"""One error hierarchy for every backend: catch ``ResolveError`` or any precise subclass."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import CNAMERecord, SOARecord


class ResolveError(Exception):
    """Base of every error the resolver raises for a query."""

    def __init__(
        self,
        message: str = "",
        *,
        name: str | None = None,
        rdtype: str | None = None,
        source: str | None = None,
    ) -> None:
        self.name = name
        self.rdtype = rdtype
        self.source = source
        super().__init__(message or self._default_message())

    def _default_message(self) -> str:
        what = f"{self.name} {self.rdtype}" if self.name else "query"
        return f"{type(self).__name__}: {what}"

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (from {self.source})" if self.source else text


class InvalidName(ResolveError, ValueError):
    """The name cannot be a DNS name: raised before any I/O."""


class InvalidQuery(ResolveError, ValueError):
    """A bad argument other than the name (unknown record type, bad timeout...)."""


class NegativeAnswer(ResolveError):
    """The name or the record type does not exist; ``ttl`` says how long that holds (RFC 2308).

    When CNAMEs led there, ``cname_chain`` holds them and ``canonical_name`` is the name that
    does not exist (or has no record of the type); both are empty/None where the backend
    does not know them.
    """

    def __init__(
        self,
        message: str = "",
        *,
        name: str | None = None,
        rdtype: str | None = None,
        source: str | None = None,
        ttl: int | None = None,
        soa: SOARecord | None = None,
        from_cache: bool = False,
        cname_chain: tuple[CNAMERecord, ...] = (),
        canonical_name: str | None = None,
    ) -> None:
        self.ttl = ttl
        self.soa = soa
        self.from_cache = from_cache
        self.cname_chain = tuple(cname_chain)
        self.canonical_name = canonical_name
        super().__init__(message, name=name, rdtype=rdtype, source=source)


class NXDomain(NegativeAnswer):
    """The name does not exist (rcode NXDOMAIN)."""

    def _default_message(self) -> str:
        return f"NXDOMAIN: {self.name} does not exist"


class NoAnswer(NegativeAnswer):
    """The name exists but has no record of the asked type (NODATA)."""

    def _default_message(self) -> str:
        return f"NODATA: {self.name} has no {self.rdtype} record"


class ResolveTimeout(ResolveError, TimeoutError):
    """No answer before the deadline."""

    def _default_message(self) -> str:
        return f"timed out resolving {self.name} {self.rdtype}"


class ServFail(ResolveError):
    """A server failed or refused to answer; ``rcode`` keeps what it said (SERVFAIL, REFUSED...)."""

    def __init__(
        self,
        message: str = "",
        *,
        name: str | None = None,
        rdtype: str | None = None,
        source: str | None = None,
        rcode: str | None = "SERVFAIL",
    ) -> None:
        self.rcode = rcode
        super().__init__(message, name=name, rdtype=rdtype, source=source)

    def _default_message(self) -> str:
        return f"{self.rcode or 'failure'} resolving {self.name} {self.rdtype}"


class NetworkError(ResolveError):
    """The upstream could not be reached (connection refused, no route...)."""


class NoBackend(ResolveError):
    """No backend in the chain can answer this query type (or every one passed)."""

    def _default_message(self) -> str:
        return f"no backend answers {self.name} {self.rdtype}"


class ResolverClosed(ResolveError):
    """The resolver was closed: before the call, or while the call waited for a lookup in flight."""


class AddressRefused(ResolveError):
    """An ``AddressPolicy`` refused every address of a name (or the numeric host itself):
    ``address`` is the refused address, ``reason`` why (``"loopback"``, ``"private"``...)."""

    def __init__(self, message: str = "", *, name: str | None = None, address: str | None = None,
                 reason: str | None = None, source: str | None = None) -> None:
        self.address = address
        self.reason = reason
        super().__init__(message, name=name, source=source)

    def _default_message(self) -> str:
        of = f" of {self.name}" if self.name and self.name != self.address else ""
        return f"address {self.address}{of} refused by policy: {self.reason}"


#: Errors after which the chain may ask the next capable backend (see ``FallthroughPolicy``).
TRANSIENT_ERRORS = (ResolveTimeout, ServFail, NetworkError)
