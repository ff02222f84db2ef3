"""Watching many short-lived sockets from an asyncio loop (c-ares's, and the iterative
transport's socket per query).

c-ares opens and closes its own sockets and tells us which to watch (``sock_state_cb``).
With a fresh socket every few queries (``udp_max_queries``, RFC 5452) that is one
``loop.add_reader`` and one ``loop.remove_reader`` per socket. On asyncio's selector loop each
pair costs a ``Handle``, a ``SelectorKey`` and a ``KeyError`` raised and caught twice (the
selector's "not registered yet" path); uvloop makes and frees a poll handle each time. At 4
queries per socket that was about 7 µs of CPU per lookup (69 -> 62 µs through the
``Resolver``, 5 runs of each alternated; 88.8 -> 76.9 µs per name in ``asyncresolve bulk``).

``EpollWatch`` (Linux) keeps the sockets in an epoll set of its own, registered with the loop
once: adding or removing a socket is one ``epoll_ctl`` from C, and when the loop sees the
epoll set readable, the ready sockets are read with one ``epoll_wait``. ``LoopWatch`` is the
portable fallback, one loop registration per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Callable

#: ``process(read_fd, write_fd)``, with ``bad`` for the side that is not ready.
Process = Callable[[int, int], None]


class LoopWatch:
    """Each socket registered with the loop itself."""

    def __init__(self, loop: asyncio.AbstractEventLoop, process: Process, bad: int) -> None:
        self._loop = loop
        self._process = process
        self._bad = bad
        self.readers: set[int] = set()
        self.writers: set[int] = set()

    def set(self, fd: int, readable: bool, writable: bool) -> None:
        loop = self._loop
        if readable and fd not in self.readers:
            loop.add_reader(fd, self._process, fd, self._bad)
            self.readers.add(fd)
        elif not readable and fd in self.readers:
            loop.remove_reader(fd)
            self.readers.discard(fd)
        if writable and fd not in self.writers:
            loop.add_writer(fd, self._process, self._bad, fd)
            self.writers.add(fd)
        elif not writable and fd in self.writers:
            loop.remove_writer(fd)
            self.writers.discard(fd)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, ValueError, OSError):  # a closed loop forgets them anyway
            for fd in self.readers:
                self._loop.remove_reader(fd)
            for fd in self.writers:
                self._loop.remove_writer(fd)
        self.readers.clear()
        self.writers.clear()


_IN = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP if hasattr(select, "epoll") else 0
_OUT = select.EPOLLOUT if hasattr(select, "epoll") else 0


class EpollWatch:
    """The sockets in an epoll set of ours, the set's own descriptor watched by the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, process: Process, bad: int) -> None:
        self._loop = loop
        self._process = process
        self._bad = bad
        self._epoll = select.epoll()
        self._events: dict[int, int] = {}
        self._closed = False
        loop.add_reader(self._epoll.fileno(), self._on_ready)

    @property
    def readers(self) -> set[int]:
        return {fd for fd, events in self._events.items() if events & select.EPOLLIN}

    def set(self, fd: int, readable: bool, writable: bool) -> None:
        if self._closed:
            return
        events = (select.EPOLLIN if readable else 0) | (_OUT if writable else 0)
        before = self._events.get(fd, 0)
        if events == before:
            return
        epoll = self._epoll
        if not events:
            del self._events[fd]
            # c-ares reports a socket gone before closing it; if it is closed already the
            # kernel has dropped it from the set itself.
            with contextlib.suppress(OSError):
                epoll.unregister(fd)
            return
        self._events[fd] = events
        if before:
            epoll.modify(fd, events)
        else:
            try:
                epoll.register(fd, events)
            except FileExistsError:  # a number reused before we heard the old socket was gone
                epoll.modify(fd, events)

    def _on_ready(self) -> None:
        process, bad = self._process, self._bad
        for fd, events in self._epoll.poll(0):
            if self._closed:
                return
            process(fd if events & _IN else bad, fd if events & _OUT else bad)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError, ValueError, OSError):  # a closed loop forgets it anyway
            self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._events.clear()


def watcher(loop: asyncio.AbstractEventLoop, process: Process, bad: int) -> LoopWatch | EpollWatch:
    """The cheapest watcher this platform has."""
    if EPOLL:
        return EpollWatch(loop, process, bad)
    return LoopWatch(loop, process, bad)


#: Whether ``watcher`` uses epoll (tests turn it off to exercise the fallback).
EPOLL = hasattr(select, "epoll")
