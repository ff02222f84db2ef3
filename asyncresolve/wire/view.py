"""A read-only view of a fast-parsed ``WireResponse`` with the surface of a dnspython ``Message``.

The iterative engine reads responses through dnspython's objects: ``flags``, ``rcode()``,
``opcode()``, ``question``, the three sections as lists of RRsets (``name``, ``rdtype``,
``rdclass``, ``ttl``, iteration and indexing over rdatas), and the rdatas' fields
(``address``, ``target``, SOA/MX/SRV/TXT fields), names only through ``to_text()``.
``MessageView`` gives exactly that surface over what the fast parser read, so the engine
runs unchanged without dnspython's parse. Names are the lower-cased presentation text
(the engine lower-cases every name it reads). Only for responses of the fast parser
(plain values); the tests run the engine on both and compare what it concludes.
"""

from __future__ import annotations

from typing import Any

from .message import AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, A, RRset, WireResponse
from .parse import _name


class NameView(str):
    """A presentation name (lower case, absolute) answering ``to_text()`` like ``dns.name.Name``."""

    __slots__ = ()

    def to_text(self, omit_final_dot: bool = False) -> str:
        text = str(self)
        return text[:-1] if omit_final_dot and text != "." else text


class _Rdata:
    __slots__ = ("rdclass", "rdtype")

    def __init__(self, rdtype: int) -> None:
        self.rdtype = rdtype
        self.rdclass = 1

    def covers(self) -> int:
        return 0


class AddressRdata(_Rdata):
    __slots__ = ("address",)

    def __init__(self, rdtype: int, address: str) -> None:  # (the base's fields set here: one call less)
        self.rdtype = rdtype
        self.rdclass = 1
        self.address = address

    def to_text(self) -> str:
        return self.address


class TargetRdata(_Rdata):
    __slots__ = ("target",)

    def __init__(self, rdtype: int, target: str) -> None:  # (the base's fields set here: one call less)
        self.rdtype = rdtype
        self.rdclass = 1
        self.target = NameView(target)

    def to_text(self) -> str:
        return str(self.target)


class MXRdata(_Rdata):
    __slots__ = ("exchange", "preference")

    def __init__(self, value: tuple[int, str]) -> None:
        super().__init__(MX)
        self.preference = value[0]
        self.exchange = NameView(value[1])

    def to_text(self) -> str:
        return f"{self.preference} {self.exchange}"


class SRVRdata(_Rdata):
    __slots__ = ("port", "priority", "target", "weight")

    def __init__(self, value: tuple[int, int, int, str]) -> None:
        super().__init__(SRV)
        self.priority, self.weight, self.port = value[0], value[1], value[2]
        self.target = NameView(value[3])

    def to_text(self) -> str:
        return f"{self.priority} {self.weight} {self.port} {self.target}"


class SOARdata(_Rdata):
    __slots__ = ("expire", "minimum", "mname", "refresh", "retry", "rname", "serial")

    def __init__(self, value: tuple[Any, ...]) -> None:
        super().__init__(SOA)
        self.mname = NameView(value[0])
        self.rname = NameView(value[1])
        self.serial, self.refresh, self.retry, self.expire, self.minimum = value[2:7]

    def to_text(self) -> str:
        return f"{self.mname} {self.rname} {self.serial} {self.refresh} {self.retry} {self.expire} {self.minimum}"


class TXTRdata(_Rdata):
    __slots__ = ("strings",)

    def __init__(self, strings: tuple[bytes, ...]) -> None:
        super().__init__(TXT)
        self.strings = strings


def _rdata(rdtype: int, value: Any) -> _Rdata:
    if rdtype in (A, AAAA):
        return AddressRdata(rdtype, value)
    if rdtype in (NS, CNAME, PTR):
        return TargetRdata(rdtype, value)
    if rdtype == SOA:
        return SOARdata(value)
    if rdtype == MX:
        return MXRdata(value)
    if rdtype == SRV:
        return SRVRdata(value)
    if rdtype == TXT:
        return TXTRdata(value)
    raise ValueError(f"no view for type {rdtype}")


class RRsetView(list[Any]):
    """An RRset: a list of rdatas with ``name``, ``rdtype``, ``rdclass``, ``ttl`` and ``covers``."""

    __slots__ = ("name", "rdclass", "rdtype", "ttl")
    covers = 0

    def __init__(self, rrset: RRset) -> None:
        owner, rdtype, rdclass, ttl, items = rrset
        if rdtype in (A, AAAA):  # the usual records (glue, answers): no dispatch per item
            super().__init__([AddressRdata(rdtype, item) for item in items])
        elif rdtype == NS:
            super().__init__([TargetRdata(rdtype, item) for item in items])
        else:
            super().__init__([_rdata(rdtype, item) for item in items])
        self.name = NameView(owner)
        self.rdtype = rdtype
        self.rdclass = rdclass
        self.ttl = ttl


class QuestionView(list[Any]):
    """The question as an (empty) RRset: ``name``, ``rdtype``, ``rdclass``."""

    __slots__ = ("name", "rdclass", "rdtype")

    def __init__(self, name: str, rdtype: int, rdclass: int) -> None:
        super().__init__()
        self.name = NameView(name)
        self.rdtype = rdtype
        self.rdclass = rdclass


class MessageView:
    """What the engine reads of a ``dns.message.Message``, over a fast-parsed response."""

    __slots__ = ("_additional", "_authority", "answer", "flags", "id", "question", "response")

    def __init__(self, response: WireResponse) -> None:
        self.response = response
        self.id = response.id
        self.flags = response.flags
        question: list[QuestionView] = []
        if response.qname is not None:
            text = response.qtext
            if text is None:
                text = _name(response.qname, 0, len(response.qname), {})[0] if response.qname != b"\0" else "."
            question.append(QuestionView(text, response.qtype, response.qclass))
        self.question = question
        self.answer = [RRsetView(r) for r in response.answer]
        # The other two sections are viewed when first read: a final answer (most responses)
        # is used without them, and viewing them cost about as much as the answer.
        self._authority: list[RRsetView] | None = None
        self._additional: list[RRsetView] | None = None

    @property
    def authority(self) -> list[RRsetView]:
        if self._authority is None:
            self._authority = [RRsetView(r) for r in self.response.authority]
        return self._authority

    @property
    def additional(self) -> list[RRsetView]:
        if self._additional is None:
            self._additional = [RRsetView(r) for r in self.response.additional]
        return self._additional

    def rcode(self) -> int:
        return self.response.rcode()

    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def ednsflags(self) -> int:
        opt = self.response.opt
        return opt[1] if opt is not None else 0

    @property
    def edns(self) -> int:
        opt = self.response.opt
        return (opt[1] >> 16) & 0xFF if opt is not None else -1

    @property
    def payload(self) -> int:
        opt = self.response.opt
        return opt[0] if opt is not None else 0
