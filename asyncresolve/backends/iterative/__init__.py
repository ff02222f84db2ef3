"""The native iterative resolver: walks down from the root servers, like unbound does.

* ``engine`` — the sans-I/O core (``Resolution``: next action / receive a response);
* ``transport`` — UDP with random ID and port, TCP on truncation, EDNS0, 0x20;
* ``servers`` — smoothed-RTT server selection and back-off;
* ``infra`` — delegations, NS addresses and lame marks in the shared cache;
* ``roothints`` — the bundled IANA root servers;
* ``backend`` — ``IterativeBackend``, the async driver (coalescing, deadlines, trace).
"""

from .backend import IterativeBackend, IterativeStats, TraceResult, trace_printer
from .engine import (
    Done,
    EngineConfig,
    NeedSubResolution,
    Resolution,
    SendQuery,
    TraceStep,
)
from .infra import Delegation, Infrastructure
from .roothints import IANA_ROOT_SERVERS, iana_root_hints
from .servers import ServerStats

__all__ = [
    "IANA_ROOT_SERVERS",
    "Delegation",
    "Done",
    "EngineConfig",
    "Infrastructure",
    "IterativeBackend",
    "IterativeStats",
    "NeedSubResolution",
    "Resolution",
    "SendQuery",
    "ServerStats",
    "TraceResult",
    "TraceStep",
    "iana_root_hints",
    "trace_printer",
]
