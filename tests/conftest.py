"""Shared fixtures: an injectable clock and a scripted backend that counts its calls.

Every test also runs under ``fail_on_backend_crash``: a backend that raises something
unexpected (a bug, which the chain logs and counts in ``stats.backends[name].crashes``) fails
the test during which it happened, even if the chain fell through to an answer. A test that
crashes a backend on purpose says so with ``@pytest.mark.backend_crash_expected``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from asyncresolve import Answer, ARecord
from asyncresolve.backends.base import Backend, NotMine, Query

# The iterative backend refuses the bundled IANA root servers (every test passes a lab's
# root_hints); inherited by the CLI and demo subprocesses that tests run.
os.environ.setdefault("ASYNCRESOLVE_NO_PUBLIC_ROOTS", "1")


def _resolv_conf_nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        with open(path) as handle:
            return [line.split()[1] for line in handle if line.startswith("nameserver") and len(line.split()) > 1]
    except OSError:
        return []


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run where a stray getaddrinfo could reach a nameserver off this machine."""
    outside = [ns for ns in _resolv_conf_nameservers()
               if not ipaddress.ip_address(ns.split("%")[0]).is_loopback]
    if outside and not os.environ.get("ASYNCRESOLVE_ALLOW_REAL_RESOLV_CONF"):
        raise pytest.UsageError(
            f"/etc/resolv.conf points at {outside}: run the tests with "
            f"`PYTHON={sys.executable} bash tests/run.sh [pytest args]`, which gives them a private "
            "resolv.conf on loopback (a mount namespace), so no query can leave the machine"
        )


class _CrashLog(logging.Handler):
    """Collects the chain's log records of backend crashes (they carry ``backend_crash``)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.crashes: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "backend_crash"):
            self.crashes.append(record)


@pytest.fixture(autouse=True)
def fail_on_backend_crash(request: pytest.FixtureRequest) -> Any:
    """Fail the test if a backend crashed while it ran, unless it is marked ``backend_crash_expected``."""
    watcher = _CrashLog()
    logger = logging.getLogger("asyncresolve")
    logger.addHandler(watcher)
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)
    if watcher.crashes and request.node.get_closest_marker("backend_crash_expected") is None:
        crashes = "\n".join(
            f"  {record.getMessage()}: {record.exc_info[1]!r}" if record.exc_info else f"  {record.getMessage()}"
            for record in watcher.crashes
        )
        pytest.fail(f"a backend crashed during this test (a bug; see stats.backends[name].crashes):\n{crashes}",
                    pytrace=False)


async def _eventually(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Wait until ``condition()`` is true, checking at every turn of the event loop (and at
    least every millisecond); fail after ``timeout`` seconds. For synchronising with work in
    other tasks or threads, instead of a sleep that guesses how long it takes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(0.001)


@pytest.fixture
def eventually() -> Callable[..., Any]:
    """``await eventually(lambda: ..., timeout=10)``: see ``_eventually``."""
    return _eventually


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


Reply = Callable[[Query], Any]


@dataclass
class ScriptedBackend(Backend):
    """Answers from a table ``{(name, rdtype): reply}``; a reply is an address, an exception
    (raised), ``NotMine``, or a callable of the query. Counts calls; can be slowed down."""

    name: str = "scripted"
    table: dict[tuple[str, str], Any] = field(default_factory=dict)
    delay: float = 0.0
    ttl: int = 300
    types: frozenset[str] | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    closed: bool = False

    def __post_init__(self) -> None:
        self.supported_types = self.types

    async def resolve(self, query: Query) -> Answer:
        self.calls.append((query.name, query.rdtype))
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self.table.get((query.name, query.rdtype), NotMine)
        if callable(reply) and not isinstance(reply, type):
            reply = reply(query)
        if isinstance(reply, type) and issubclass(reply, BaseException):
            raise reply()
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Answer):
            return reply
        return Answer(query.name, query.rdtype, [ARecord(query.name, self.ttl, reply)], self.name)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def scripted() -> type[ScriptedBackend]:
    return ScriptedBackend
