"""Real DNS peers for the lab: NSD (authoritative) and unbound (recursive).

These are servers nobody in this project wrote, installed from Debian packages
(``apt-get install nsd unbound``).  They let tests check the lab's own
authoritative server and the project's resolvers against real implementations:

* :class:`NSD` serves a ``{origin: zone text}`` mapping on one loopback
  address, authoritatively, with rate limiting off.
* :class:`Unbound` is a recursive resolver whose root hints are the lab's root
  servers, with DNSSEC validation, trust-anchor updates and forwarders off, and
  the special-use names (``test.``, ``invalid.``, ``127.in-addr.arpa.`` ...)
  that unbound answers locally by default handed back to the lab.

Both run as non-daemon child processes (``nsd -d``, ``unbound -d``) in a
private temporary directory that holds every runtime file, and are stopped by
pid (their process group) on :meth:`~_Peer.stop`, on leaving a ``with`` /
``async with`` block, and at interpreter exit.  Readiness is awaited by really
querying the server; a server that fails to start raises
:class:`PeerStartError` carrying its log.

Every address used is in 127.0.0.0/8 (or ``::1``): no packet leaves the host.

Example::

    async with NSD({"example.test.": ZONE}, address="127.54.9.8", port=53) as nsd:
        ...  # query nsd.endpoint == (nsd.address, nsd.port)
    async with Unbound(root_hints=lab.root_hints) as ub:  # random 127.x, port 53
        ...  # recursive queries to ub.endpoint
        await ub.restart()  # cold cache: new process, same address and port
        await ub.flush()    # or: empty the caches via unbound-control reload

Sync code uses ``with`` or :meth:`~_Peer.start` / :meth:`~_Peer.stop`
(and ``restart_sync()`` / ``flush_sync()``).  ``port=None`` picks a free high
port (no root needed); port 53 needs root, and is what unbound's *upstream*
side always uses: referrals carry no ports, so the lab must run on port 53.

In tests, :func:`require_peer` skips when a peer binary is missing, except
under CI (``CI`` set to a true value), where it fails: CI must install them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, TypeVar

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

__all__ = [
    "INSTALL_HINTS",
    "NSD",
    "UNBOUND_DEFAULT_LOCAL_ZONES",
    "PeerError",
    "PeerMissing",
    "PeerStartError",
    "Unbound",
    "find_peer_binary",
    "free_port",
    "peer_available",
    "random_loopback_address",
    "random_loopback_block",
    "require_peer",
]

#: Debian package that provides each binary the peers use.
INSTALL_HINTS: dict[str, str] = {
    "nsd": "nsd",
    "nsd-checkconf": "nsd",
    "nsd-checkzone": "nsd",
    "unbound": "unbound",
    "unbound-checkconf": "unbound",
    "unbound-control": "unbound",
}

#: Directories searched besides ``$PATH``: Debian installs the daemons in
#: ``/usr/sbin``, which is not on a normal user's ``PATH``.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")

#: Zones unbound (1.17) answers itself unless told ``nodefault``
#: (unbound.conf(5), "default zones"); the RFC 1918 / AS112 reverse zones are
#: released with ``unblock-lan-zones`` instead.
UNBOUND_DEFAULT_LOCAL_ZONES: tuple[str, ...] = (
    "localhost.",
    "127.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "home.arpa.",
    "onion.",
    "test.",
    "invalid.",
    "0.in-addr.arpa.",
    "254.169.in-addr.arpa.",
    "2.0.192.in-addr.arpa.",
    "100.51.198.in-addr.arpa.",
    "113.0.203.in-addr.arpa.",
    "255.255.255.255.in-addr.arpa.",
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "8.b.d.0.1.0.0.2.ip6.arpa.",
)


class PeerError(RuntimeError):
    """Base class of the errors this module raises."""


class PeerMissing(PeerError):
    """A peer's binary is not installed; the message says what to install."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        package = INSTALL_HINTS.get(binary, binary)
        self.package = package
        super().__init__(
            f"{binary!r} not found on PATH or in {', '.join(_EXTRA_BIN_DIRS)}; "
            f"install it with: apt-get install {package}"
        )


class PeerStartError(PeerError):
    """A peer failed its config check or did not become ready; includes its log."""

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        text = message
        if log.strip():
            text += "\n--- peer output ---\n" + log.rstrip()
        super().__init__(text)


# --------------------------------------------------------------------------
# Binaries and pytest helper
# --------------------------------------------------------------------------


def find_peer_binary(name: str) -> str:
    """Return the absolute path of binary *name*, or raise :class:`PeerMissing`.

    Looks on ``$PATH`` first, then in the sbin directories Debian uses.
    """
    found = shutil.which(name)
    if found:
        return found
    for directory in _EXTRA_BIN_DIRS:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PeerMissing(name)


def peer_available(name: str) -> bool:
    """True when binary *name* can be found (see :func:`find_peer_binary`)."""
    try:
        find_peer_binary(name)
    except PeerMissing:
        return False
    return True


def _in_ci() -> bool:
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def require_peer(*names: str) -> None:
    """In a test, demand the peer binaries *names* (default: nsd and unbound).

    When one is missing this calls ``pytest.fail`` under CI (the ``CI``
    environment variable is set to a true value): CI installs the packages and
    must fail loudly rather than skip.  Elsewhere it calls ``pytest.skip``.
    Peer daemons also need root for port 53; that is checked by the peers.
    """
    import pytest  # only needed by tests

    missing: list[PeerMissing] = []
    for name in names or ("nsd", "unbound"):
        try:
            find_peer_binary(name)
        except PeerMissing as exc:
            missing.append(exc)
    if not missing:
        return
    message = "; ".join(str(exc) for exc in missing)
    if _in_ci():
        pytest.fail(f"peer missing under CI: {message}", pytrace=False)
    pytest.skip(f"peer missing: {message}")


# --------------------------------------------------------------------------
# Addresses and ports
# --------------------------------------------------------------------------


def require_root(reason: str = "binding port 53") -> None:
    """In a test, demand root (for port 53, mount namespaces): fail under CI, skip elsewhere."""
    import pytest  # only needed by tests

    if os.geteuid() == 0:
        return
    if _in_ci():
        pytest.fail(f"CI must run as root: {reason}", pytrace=False)
    pytest.skip(f"needs root: {reason}")


def random_loopback_block(rng: random.Random | None = None) -> str:
    """Return a random ``"127.X.Y."`` prefix, avoiding ``127.0.0.`` and 127.255.

    Parallel test runs each pick their own block so that they do not collide
    on port 53.
    """
    rng = rng or random.SystemRandom()
    return f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}."


def random_loopback_address(rng: random.Random | None = None) -> str:
    """Return a random 127.X.Y.Z address (Z in 1..254) free on port 53."""
    rng = rng or random.SystemRandom()
    for _ in range(64):
        address = random_loopback_block(rng) + str(rng.randint(1, 254))
        if port_is_free(address, 53):
            return address
    raise PeerError("could not find a free random 127.x.y.z address")  # pragma: no cover


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _check_loopback(address: str) -> None:
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"peers only use loopback addresses, not {address!r}")


def port_is_free(address: str, port: int) -> bool:
    """True when both UDP and TCP *port* can be bound on *address* right now."""
    family = _family(address)
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def free_port(address: str = "127.0.0.1") -> int:
    """Return a port that is free for both UDP and TCP on *address*.

    The kernel picks a UDP port by binding to port 0; the same port is then
    checked on TCP.  (There is a window between this check and the peer's own
    bind; the random 127.x addresses make a collision unlikely.)
    """
    family = _family(address)
    for _ in range(100):
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
            port = int(sock.getsockname()[1])
        if port_is_free(address, port):
            return port
    raise PeerError(f"no free UDP+TCP port on {address}")  # pragma: no cover


def _fmt_endpoint(address: str, port: int) -> str:
    return f"{address}@{port}"


# --------------------------------------------------------------------------
# Process management
# --------------------------------------------------------------------------

_LIVE: weakref.WeakSet[_Peer] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all_at_exit() -> None:  # pragma: no cover - exercised only at exit
    with _LIVE_LOCK:
        peers = list(_LIVE)
    for peer in peers:
        with contextlib.suppress(Exception):
            peer.stop()


#: Runs as ``python -c`` between us and each daemon.  It makes itself a child
#: subreaper, so the processes the daemon forks (NSD's xfrd and server) are
#: reaped here when they exit instead of lingering as zombies of PID 1; it
#: forwards SIGTERM/SIGINT/SIGHUP to the daemon and exits with the daemon's
#: status once every descendant is gone.  A thread watches a pipe whose write
#: end only the test process holds: EOF means the test process died (even by
#: SIGKILL), and the daemon is terminated rather than left behind (SIGKILL to
#: the group after 5 s) and the temporary directory removed.
_SUPERVISOR = r"""
import ctypes, os, shutil, signal, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
watch_fd, cleanup_dir, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
pid = os.fork()
if pid == 0:
    os.close(watch_fd)
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
def forward(signum, frame):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, forward)
orphaned, done = threading.Event(), threading.Event()
def watch():
    while os.read(watch_fd, 64):
        pass
    orphaned.set()
    forward(signal.SIGTERM, None)
    if not done.wait(5):
        os.killpg(0, signal.SIGKILL)
threading.Thread(target=watch, daemon=True).start()
status = 0
while True:
    try:
        child, st = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    if child == pid:
        status = os.waitstatus_to_exitcode(st)
done.set()
if orphaned.is_set() and cleanup_dir:
    shutil.rmtree(cleanup_dir, ignore_errors=True)
sys.exit(status if status >= 0 else 128 - status)
"""


_P = TypeVar("_P", bound="_Peer")


class _Peer:
    """Common machinery: temp dir, config check, launch, readiness, stop."""

    #: Name of the daemon binary; set by subclasses.
    binary_name: ClassVar[str] = ""

    def __init__(
        self,
        address: str | None = None,
        port: int | None = 53,
        *,
        startup_timeout: float = 10.0,
        workdir: str | os.PathLike[str] | None = None,
        verbosity: int = 1,
    ) -> None:
        self.address: str = address or random_loopback_address()
        _check_loopback(self.address)
        self._requested_port = port
        self.port: int = port if port is not None else 0
        self.startup_timeout = startup_timeout
        self.verbosity = verbosity
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir: Path | None = None
        self.binary: str = find_peer_binary(self.binary_name)
        self._proc: subprocess.Popen[bytes] | None = None
        self._watch_fd: int | None = None

    # -- to be provided by subclasses -------------------------------------

    def _write_files(self, workdir: Path) -> Path:
        """Write config and data files; return the config path."""
        raise NotImplementedError

    def _check_config(self, config: Path) -> None:
        """Run the daemon's own config checker; raise PeerStartError."""
        raise NotImplementedError

    def _command(self, config: Path) -> list[str]:
        raise NotImplementedError

    def _probes(self) -> list[dns.message.Message]:
        """Queries that must all be answered for the server to count as ready."""
        raise NotImplementedError

    def _probe_ok(self, query: dns.message.Message, response: dns.message.Message) -> bool:
        return True

    # -- state -------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Pid of the running daemon, or None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the daemon process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def endpoint(self) -> tuple[str, int]:
        """``(address, port)`` to send queries to."""
        return (self.address, self.port)

    @property
    def config_path(self) -> Path:
        """The config file written for the daemon."""
        if self.workdir is None:
            raise PeerError(f"{type(self).__name__} has not been started")
        return self.workdir / f"{self.binary_name}.conf"

    @property
    def log_path(self) -> Path:
        """File collecting the daemon's stdout and stderr."""
        if self.workdir is None:
            raise PeerError(f"{type(self).__name__} has not been started")
        return self.workdir / f"{self.binary_name}.log"

    def log(self) -> str:
        """The daemon's output so far (empty before the first start)."""
        if self.workdir is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.address}@{self.port} {state}>"

    # -- launching ---------------------------------------------------------

    def _prepare(self) -> Path:
        """Create the work dir (first start only), pick the port, write config."""
        if self.workdir is None:
            if self._workdir_arg is not None:
                self._workdir_arg.mkdir(parents=True, exist_ok=True)
                self.workdir = self._workdir_arg
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix=f"asyncresolve-{self.binary_name}-")
                self.workdir = Path(self._tmp.name)
        if self._requested_port is None and not self.port:
            self.port = free_port(self.address)
        elif not port_is_free(self.address, self.port):
            # Checked here because NSD binds UDP with SO_REUSEADDR: a second
            # server on a taken address would start and share the port silently.
            raise PeerStartError(f"{self.address}@{self.port} is already in use (UDP or TCP)")
        if self.port < 1024 and os.geteuid() != 0:
            raise PeerStartError(
                f"{self.binary_name} needs root to listen on port {self.port}; pass port=None for a free high port"
            )
        config = self._write_files(self.workdir)
        self._check_config(config)
        return config

    def _check_not_running(self) -> None:
        if self.running:
            raise PeerError(f"{self!r} is already running")

    def _launch(self) -> None:
        self._check_not_running()
        config = self._prepare()
        command = self._command(config)
        watch_read, self._watch_fd = os.pipe()
        try:
            with open(self.log_path, "ab") as log:
                log.write(f"=== {' '.join(command)}\n".encode())
                log.flush()
                self._proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _SUPERVISOR,
                        str(watch_read),
                        # Removed by the supervisor if we die without stop().
                        self._tmp.name if self._tmp is not None else "",
                        *command,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,
                    pass_fds=(watch_read,),
                )
        except BaseException:
            os.close(self._watch_fd)
            self._watch_fd = None
            raise
        finally:
            os.close(watch_read)
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _exited_error(self) -> PeerStartError:
        assert self._proc is not None
        code = self._proc.returncode
        return PeerStartError(
            f"{self.binary_name} exited with status {code} while starting on {self.address}@{self.port}",
            self.log(),
        )

    def _timeout_error(self, last: str) -> PeerStartError:
        return PeerStartError(
            f"{self.binary_name} on {self.address}@{self.port} not ready after "
            f"{self.startup_timeout:.1f}s (last probe: {last})",
            self.log(),
        )

    def _judge(self, query: dns.message.Message, response: dns.message.Message) -> tuple[bool, str]:
        ok = self._probe_ok(query, response)
        q = query.question[0]
        return (
            ok,
            f"{q.name} {dns.rdatatype.to_text(q.rdtype)}: {dns.rcode.to_text(response.rcode())}",
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = self._probes()
        last = "none sent"
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._exited_error()
            still: list[dns.message.Message] = []
            for query in pending:
                try:
                    response = dns.query.udp(query, self.address, port=self.port, timeout=0.25)
                except (dns.exception.DNSException, OSError) as exc:
                    still.append(query)
                    last = f"{type(exc).__name__}: {exc}"
                    continue
                ok, last = self._judge(query, response)
                if not ok:
                    still.append(query)
            pending = still
            if not pending:
                return
            if time.monotonic() > deadline:
                raise self._timeout_error(last)
            time.sleep(0.02)

    async def _await_ready(self) -> None:
        # The probes block, so they run in a thread: the loop may host lab servers that must
        # keep answering while the peer starts.
        await asyncio.to_thread(self._wait_ready)

    # -- stopping ----------------------------------------------------------

    def _terminate(self, timeout: float = 5.0) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL) and reap it and its group."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=timeout)
            # Children the daemon forked (NSD's xfrd and server processes)
            # share its process group; make sure none outlive it.
            self._kill_group(proc.pid)
        finally:
            self._proc = None
            if self._watch_fd is not None:
                os.close(self._watch_fd)
                self._watch_fd = None
            with _LIVE_LOCK:
                _LIVE.discard(self)

    @staticmethod
    def _kill_group(pgid: int, timeout: float = 2.0) -> None:
        """Wait for the process group to empty; SIGKILL what is left at *timeout*."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
                return
            time.sleep(0.01)

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.workdir = None
        elif self._workdir_arg is not None:
            self.workdir = None
        if self._requested_port is None:
            self.port = 0

    # -- public lifecycle ----------------------------------------------------

    def start(self) -> None:
        """Start the daemon and block until it answers; see :meth:`astart`."""
        self._check_not_running()
        try:
            self._launch()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the daemon (by pid) and remove its temporary directory. Idempotent."""
        try:
            self._terminate()
        finally:
            self._cleanup()

    def restart_sync(self) -> None:
        """Stop and start again on the same address and port (fresh state)."""
        self._terminate()
        try:
            self._launch()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    async def astart(self) -> None:
        """Start the daemon and wait, without blocking the loop, until it answers.

        Raises :class:`PeerStartError` (with the daemon's output) when the
        config check fails, the process exits or it is not ready within
        ``startup_timeout`` seconds; the process is stopped in that case.
        """
        self._check_not_running()
        try:
            self._launch()
            await self._await_ready()
        except BaseException:
            await self.astop()
            raise

    async def astop(self) -> None:
        """Async :meth:`stop` (the wait for exit runs in a worker thread)."""
        await asyncio.to_thread(self.stop)

    async def restart(self) -> None:
        """Stop and start again on the same address and port: all caches are cold."""
        await asyncio.to_thread(self._terminate)
        try:
            self._launch()
            await self._await_ready()
        except BaseException:
            await self.astop()
            raise

    def __enter__(self: _P) -> _P:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self: _P) -> _P:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def __del__(self) -> None:  # pragma: no cover - last-resort cleanup
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=2)


def _run_check(argv: list[str], what: str) -> None:
    result = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise PeerStartError(
            f"{what} failed (exit {result.returncode}): {' '.join(argv)}",
            (result.stdout or "") + (result.stderr or ""),
        )


def _quote(value: str | os.PathLike[str]) -> str:
    text = os.fspath(value)
    if '"' in text or "\n" in text:
        raise ValueError(f"unusable value in config: {text!r}")
    return f'"{text}"'


# --------------------------------------------------------------------------
# NSD
# --------------------------------------------------------------------------


def _zone_file_name(origin: str, index: int) -> str:
    stem = origin.rstrip(".") or "root"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    return f"{index:03d}-{safe}.zone"


class NSD(_Peer):
    """NSD serving *zones* authoritatively on ``address@port``.

    :param zones: ``{origin: zone text}``; the text may rely on the origin
        (``@``, relative names) without a ``$ORIGIN`` line.
    :param address: a loopback address; default a random free 127.x.y.z.
    :param port: default 53 (needs root); ``None`` picks a free port.
    :param minimal_responses: NSD's ``minimal-responses`` (default off: NSD
        adds the zone's NS RRset to positive answers and glue as additional).
    :param extra_server_config: raw lines appended to the ``server:`` clause.

    Rate limiting is off (``rrl-ratelimit: 0``): Debian's NSD enables it and
    would truncate or drop rapid test queries.  Each zone file is checked with
    ``nsd-checkzone`` and the config with ``nsd-checkconf`` before start;
    readiness means every zone's SOA is answered authoritatively.
    """

    binary_name: ClassVar[str] = "nsd"

    def __init__(
        self,
        zones: Mapping[str, str],
        address: str | None = None,
        port: int | None = 53,
        *,
        minimal_responses: bool = False,
        extra_server_config: Iterable[str] = (),
        startup_timeout: float = 10.0,
        workdir: str | os.PathLike[str] | None = None,
        verbosity: int = 1,
    ) -> None:
        if not zones:
            raise ValueError("NSD needs at least one zone")
        self.zones: dict[str, str] = {dns.name.from_text(origin).to_text(): text for origin, text in zones.items()}
        self.minimal_responses = minimal_responses
        self.extra_server_config = list(extra_server_config)
        self._checkconf = find_peer_binary("nsd-checkconf")
        self._checkzone = find_peer_binary("nsd-checkzone")
        super().__init__(
            address,
            port,
            startup_timeout=startup_timeout,
            workdir=workdir,
            verbosity=verbosity,
        )

    def _write_files(self, workdir: Path) -> Path:
        zone_dir = workdir / "zones"
        zone_dir.mkdir(exist_ok=True)
        self.zone_files: dict[str, Path] = {}
        zone_clauses: list[str] = []
        for index, (origin, text) in enumerate(self.zones.items()):
            path = zone_dir / _zone_file_name(origin, index)
            path.write_text(text if text.endswith("\n") else text + "\n")
            self.zone_files[origin] = path
            zone_clauses += [
                "zone:",
                f"    name: {_quote(origin)}",
                f"    zonefile: {_quote(path)}",
            ]
        server = [
            "server:",
            f"    ip-address: {_fmt_endpoint(self.address, self.port)}",
            f"    port: {self.port}",
            f"    do-ip4: {'yes' if _family(self.address) == socket.AF_INET else 'no'}",
            f"    do-ip6: {'yes' if _family(self.address) == socket.AF_INET6 else 'no'}",
            "    server-count: 1",
            "    reuseport: no",
            f"    verbosity: {self.verbosity}",
            '    username: ""',
            '    chroot: ""',
            '    database: ""',
            f"    zonesdir: {_quote(zone_dir)}",
            f"    zonelistfile: {_quote(workdir / 'zone.list')}",
            f"    xfrdfile: {_quote(workdir / 'xfrd.state')}",
            f"    xfrdir: {_quote(workdir)}",
            f"    pidfile: {_quote(workdir / 'nsd.pid')}",
            # Never write zone data back into our files.
            "    zonefiles-write: 0",
            "    rrl-ratelimit: 0",
            "    rrl-whitelist-ratelimit: 0",
            "    hide-version: no",
            "    refuse-any: no",
            f"    minimal-responses: {'yes' if self.minimal_responses else 'no'}",
            "    tcp-count: 64",
            *(f"    {line}" for line in self.extra_server_config),
            "remote-control:",
            "    control-enable: no",
        ]
        config = workdir / "nsd.conf"
        config.write_text("\n".join(server + zone_clauses) + "\n")
        return config

    def _check_config(self, config: Path) -> None:
        _run_check([self._checkconf, str(config)], "nsd-checkconf")
        for origin, path in self.zone_files.items():
            _run_check([self._checkzone, origin, str(path)], f"nsd-checkzone {origin}")

    def _command(self, config: Path) -> list[str]:
        return [self.binary, "-d", "-c", str(config)]

    def _probes(self) -> list[dns.message.Message]:
        return [dns.message.make_query(origin, dns.rdatatype.SOA) for origin in self.zones]

    def _probe_ok(self, query: dns.message.Message, response: dns.message.Message) -> bool:
        return response.rcode() == dns.rcode.NOERROR and bool(response.flags & dns.flags.AA) and bool(response.answer)


# --------------------------------------------------------------------------
# unbound
# --------------------------------------------------------------------------

HintsArg = Sequence[tuple[str, int] | str]


def _normalise_hints(root_hints: HintsArg) -> list[str]:
    addresses: list[str] = []
    for hint in root_hints:
        if isinstance(hint, str):
            address, port = hint, 53
        else:
            address, port = hint[0], int(hint[1])
        _check_loopback(address)
        if port != 53:
            raise ValueError(
                f"root hint {address}@{port}: unbound queries root hints (and every "
                "server a referral names) on port 53 only; run the lab with port=53"
            )
        addresses.append(address)
    if not addresses:
        raise ValueError("Unbound needs at least one root hint")
    return addresses


def root_hints_text(addresses: Sequence[str]) -> str:
    """A root hints file for unbound naming one made-up server per address.

    Only the addresses matter: unbound primes (``. NS``) from them and then
    uses the NS set and glue the lab root returns.
    """
    lines = []
    for index, address in enumerate(addresses):
        name = f"hint{index}.root-hints.invalid."
        rrtype = "AAAA" if _family(address) == socket.AF_INET6 else "A"
        lines.append(f".\t3600000\tIN\tNS\t{name}")
        lines.append(f"{name}\t3600000\tIN\t{rrtype}\t{address}")
    return "\n".join(lines) + "\n"


class Unbound(_Peer):
    """unbound as a recursive resolver whose root is the lab's root servers.

    :param root_hints: lab root servers as ``(ip, port)`` pairs or bare IPs;
        the port must be 53, since unbound cannot be told other ports for the
        servers referrals name.
    :param address: loopback address to listen on; default a random 127.x.y.z.
    :param port: default 53; ``None`` picks a free port (the listening port
        may be anything, only the upstream side is fixed to 53).
    :param local_zones_nodefault: zones unbound would answer locally that
        are handed back to recursion; default all of
        :data:`UNBOUND_DEFAULT_LOCAL_ZONES`.
    :param qname_minimisation: unbound's default (on) is kept; note that it
        makes unbound ask for ``_.name A`` / NS along the way, so the lab's
        servers see more queries than the names asked.
    :param extra_server_config: raw lines appended to ``server:``.

    Validation is off (``module-config: "iterator"``, no trust anchors), no
    forwarders, ``do-not-query-localhost: no`` so it talks to 127.x servers,
    ``cache-min-ttl: 0``, no prefetch, one thread.  A control socket (unix
    domain, no certificates) allows :meth:`control` / :meth:`flush`.
    """

    binary_name: ClassVar[str] = "unbound"

    def __init__(
        self,
        root_hints: HintsArg,
        address: str | None = None,
        port: int | None = 53,
        *,
        local_zones_nodefault: Iterable[str] = UNBOUND_DEFAULT_LOCAL_ZONES,
        qname_minimisation: bool = True,
        extra_server_config: Iterable[str] = (),
        startup_timeout: float = 10.0,
        workdir: str | os.PathLike[str] | None = None,
        verbosity: int = 1,
    ) -> None:
        self.root_hints: list[str] = _normalise_hints(root_hints)
        self.local_zones_nodefault = [dns.name.from_text(zone).to_text() for zone in local_zones_nodefault]
        self.qname_minimisation = qname_minimisation
        self.extra_server_config = list(extra_server_config)
        self._checkconf = find_peer_binary("unbound-checkconf")
        try:
            self._control_bin: str | None = find_peer_binary("unbound-control")
        except PeerMissing:
            self._control_bin = None
        super().__init__(
            address,
            port,
            startup_timeout=startup_timeout,
            workdir=workdir,
            verbosity=verbosity,
        )

    @property
    def control_socket(self) -> Path:
        """Unix socket of unbound's remote control."""
        if self.workdir is None:
            raise PeerError("Unbound has not been started")
        return self.workdir / "control.sock"

    def _write_files(self, workdir: Path) -> Path:
        hints = workdir / "root.hints"
        hints.write_text(root_hints_text(self.root_hints))
        any_v6 = any(_family(a) == socket.AF_INET6 for a in [*self.root_hints, self.address])
        any_v4 = any(_family(a) == socket.AF_INET for a in [*self.root_hints, self.address])
        lines = [
            "server:",
            f"    interface: {_fmt_endpoint(self.address, self.port)}",
            f"    port: {self.port}",
            f"    do-ip4: {'yes' if any_v4 else 'no'}",
            f"    do-ip6: {'yes' if any_v6 else 'no'}",
            "    do-udp: yes",
            "    do-tcp: yes",
            '    username: ""',
            '    chroot: ""',
            f"    directory: {_quote(workdir)}",
            f"    pidfile: {_quote(workdir / 'unbound.pid')}",
            "    use-syslog: no",
            '    logfile: ""',
            "    log-time-ascii: yes",
            f"    verbosity: {self.verbosity}",
            "    num-threads: 1",
            "    so-reuseport: no",
            # Room for bulk tests: with Debian's 128 queries per thread, a burst of 1,000
            # distinct names makes unbound drop queries and clients time out.
            "    outgoing-range: 4096",
            "    num-queries-per-thread: 1024",
            "    access-control: 127.0.0.0/8 allow",
            "    access-control: ::1/128 allow",
            "    do-not-query-localhost: no",
            f"    root-hints: {_quote(hints)}",
            '    module-config: "iterator"',
            "    trust-anchor-signaling: no",
            "    root-key-sentinel: no",
            "    harden-referral-path: no",
            f"    qname-minimisation: {'yes' if self.qname_minimisation else 'no'}",
            "    prefetch: no",
            "    prefetch-key: no",
            "    cache-min-ttl: 0",
            "    serve-expired: no",
            "    unblock-lan-zones: yes",
            "    insecure-lan-zones: yes",
            # Servers the lab stops are forgotten quickly rather than for 15 min.
            "    infra-host-ttl: 60",
            *(f"    local-zone: {_quote(zone)} nodefault" for zone in self.local_zones_nodefault),
            *(f"    {line}" for line in self.extra_server_config),
            "remote-control:",
            f"    control-enable: {'yes' if self._control_bin else 'no'}",
        ]
        if self._control_bin:
            lines += [
                f"    control-interface: {_quote(workdir / 'control.sock')}",
                "    control-use-cert: no",
            ]
        config = workdir / "unbound.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _check_config(self, config: Path) -> None:
        _run_check([self._checkconf, str(config)], "unbound-checkconf")

    def _command(self, config: Path) -> list[str]:
        return [self.binary, "-d", "-c", str(config)]

    def _probes(self) -> list[dns.message.Message]:
        # Answered by unbound itself, without recursion: readiness does not
        # depend on the lab being up, and leaves the cache cold.
        return [dns.message.make_query("id.server.", dns.rdatatype.TXT, dns.rdataclass.CH)]

    def control(self, *args: str, timeout: float = 10.0) -> str:
        """Run ``unbound-control`` against this instance; return its output."""
        if self._control_bin is None:
            raise PeerMissing("unbound-control")
        if not self.running:
            raise PeerError(f"{self!r} is not running")
        argv = [self._control_bin, "-c", str(self.config_path), *args]
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise PeerError(f"{' '.join(argv)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result.stdout

    def flush_sync(self) -> None:
        """Empty every cache (message, RRset, infra) without restarting."""
        self.control("reload")

    async def flush(self) -> None:
        """Async :meth:`flush_sync`."""
        await asyncio.to_thread(self.flush_sync)
