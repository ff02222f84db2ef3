"""Running a peer daemon: a supervised child process in a private directory, readiness by query."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
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

from ._common import (
    PeerError,
    PeerStartError,
    _check_loopback,
    find_peer_binary,
    free_port,
    port_is_free,
    random_loopback_address,
)

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
        self._launch_and_wait()

    def _launch_and_wait(self) -> None:
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
        self._launch_and_wait()

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


