"""The native wire codec: query templates and a fast response parser checked against dnspython.

* ``QueryTemplate``, ``name_to_wire``, ``randomise_case`` (or both at once: ``name_to_wire_0x20``),
  ``RandomSource`` build queries.
* ``parse_fast(data)`` reads the common reply shapes or raises ``Decline``;
  ``parse_reference(data)`` is dnspython's reading of the same bytes; ``parse(data)`` is
  the fast path with dnspython behind it. All three give a ``WireResponse``.
* ``MessageView(response)`` shows a fast-parsed response with the surface of a dnspython
  ``Message`` that the iterative engine reads.
* ``records(rrset)`` turns an RRset of a ``WireResponse`` into the library's records.
"""

from __future__ import annotations

from .message import DECLINE, FAST_TYPES, Decline, RRset, WireResponse, records
from .parse import parse as parse_fast
from .query import QueryTemplate, RandomSource, name_to_wire, name_to_wire_0x20, question, randomise_case
from .reference import from_message, load_rdata_classes
from .reference import parse as parse_reference
from .view import MessageView


def parse(data: bytes) -> WireResponse:
    """The fast parser, or dnspython's when it declines (dnspython's errors propagate)."""
    try:
        return parse_fast(data)
    except Decline:
        return parse_reference(data)


__all__ = [
    "DECLINE",
    "FAST_TYPES",
    "Decline",
    "MessageView",
    "QueryTemplate",
    "RRset",
    "RandomSource",
    "WireResponse",
    "from_message",
    "load_rdata_classes",
    "name_to_wire",
    "name_to_wire_0x20",
    "parse",
    "parse_fast",
    "parse_reference",
    "question",
    "randomise_case",
    "records",
]
