"""redis-server, the shared-cache peer: one throw-away Redis on a loopback address."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import ClassVar

from ._common import _family
from ._process import _Peer


class RedisServer(_Peer):
    """``redis-server`` on ``address@port`` with persistence off, for tests of ``RedisCache``.

    :param address: a loopback address; default a random free 127.x.y.z.
    :param port: default ``None`` (a free high port).
    :param extra_config: raw lines appended to the config (``maxmemory 1mb``...).

    ``DEBUG`` is enabled for local clients so tests can make the server slow
    (``DEBUG SLEEP``). Readiness means the server answers ``PING``.
    """

    binary_name: ClassVar[str] = "redis-server"

    def __init__(
        self,
        address: str | None = None,
        port: int | None = None,
        *,
        extra_config: tuple[str, ...] = (),
        startup_timeout: float = 10.0,
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.extra_config = extra_config
        super().__init__(address, port, startup_timeout=startup_timeout, workdir=workdir)

    @property
    def url(self) -> str:
        """``redis://address:port/0``, for ``RedisCache`` or redis-py."""
        host = f"[{self.address}]" if _family(self.address) == socket.AF_INET6 else self.address
        return f"redis://{host}:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL the server (as a crash would) and keep its address, port and files, so
        that ``restart()`` brings it back where clients expect it."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    async def akill(self) -> None:
        """Async :meth:`kill`."""
        await asyncio.to_thread(self.kill)

    def _write_files(self, workdir: Path) -> Path:
        lines = [
            f"bind {self.address}",
            f"port {self.port}",
            "protected-mode no",
            'save ""',
            "appendonly no",
            f"dir {workdir}",
            "daemonize no",
            "enable-debug-command local",
            *self.extra_config,
        ]
        config = workdir / f"{self.binary_name}.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _check_config(self, config: Path) -> None:
        """redis-server has no separate checker: a bad config fails the start, with its log."""

    def _command(self, config: Path) -> list[str]:
        return [self.binary, str(config)]

    def _ping(self) -> str:
        family = _family(self.address)
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.25)
            sock.connect((self.address, self.port))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).decode("ascii", "replace").strip()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "none sent"
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._exited_error()
            try:
                reply = self._ping()
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if reply == "+PONG":
                    return
                last = reply
            if time.monotonic() > deadline:
                raise self._timeout_error(last)
            time.sleep(0.02)
