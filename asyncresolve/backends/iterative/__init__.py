"""The native iterative resolver: walks down from the root servers, like unbound does.

What users need is exported here: :class:`IterativeBackend`, its counters
(:class:`IterativeStats`, ``backend.stats``) and its trace (:class:`TraceStep`
given to ``trace=`` callbacks, its :class:`Verdict`, :class:`TraceResult` from
``resolve_with_trace``, :func:`trace_printer`), and the bundled root hints
(:func:`iana_root_hints`). The modules behind it are internals:

* ``engine`` — the sans-I/O core (``Resolution``: next action / receive a response);
* ``transport`` — UDP with random ID and port, TCP on truncation, EDNS0, 0x20;
* ``servers`` — smoothed-RTT server selection and back-off;
* ``infra`` — delegations, NS addresses and lame marks in the shared cache;
* ``roothints`` — the bundled IANA root servers;
* ``backend`` — ``IterativeBackend``, the async driver (coalescing, deadlines, trace).
"""

from .backend import IterativeBackend, IterativeStats, TraceResult, trace_printer
from .engine import TraceStep, Verdict
from .roothints import iana_root_hints

__all__ = [
    "IterativeBackend",
    "IterativeStats",
    "TraceResult",
    "TraceStep",
    "Verdict",
    "iana_root_hints",
    "trace_printer",
]
