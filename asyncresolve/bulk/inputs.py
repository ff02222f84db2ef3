"""Reading names for a bulk run: one per line, comments, URLs, stdin.

A line is stripped; blank lines and ``#`` comments are skipped; a URL
(``https://user@www.example.com:8443/path``) gives its host, so a crawler's URL list works
as it is. Whatever remains goes to the resolver as a name: a trailing dot is fine, and a
line that is no DNS name comes back as an ``INVALID`` result, never an error of the run.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from typing import IO
from urllib.parse import urlsplit

_CHUNK = 1 << 16


def clean_line(line: str) -> str | None:
    """The name a line stands for, or None for a blank line or a comment."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if "://" in text:
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        return host or text  # a URL without a host stays as it is, and comes back INVALID
    return text


def _open(path: str) -> IO[str]:
    return open(path, encoding="utf-8", errors="replace", newline=None)


def read_names(path: str) -> Iterator[str]:
    """The names of a file, lazily (a 10-million-line file is never held in memory)."""
    with _open(path) as handle:
        for line in handle:
            name = clean_line(line)
            if name is not None:
                yield name


async def read_stream(stream: IO[str] | None = None) -> AsyncIterator[str]:
    """The names read from ``stream`` (default stdin) in a worker thread, a chunk at a time,
    so a slow pipe never blocks the event loop."""
    stream = stream if stream is not None else sys.stdin
    while True:
        lines = await asyncio.to_thread(stream.readlines, _CHUNK)
        if not lines:
            return
        for line in lines:
            name = clean_line(line)
            if name is not None:
                yield name


def count_names(path: str) -> int:
    """How many names ``read_names(path)`` will yield (blocking: run it in a thread)."""
    count = 0
    with _open(path) as handle:
        for line in handle:
            text = line.strip()
            if text and not text.startswith("#"):
                count += 1
    return count
