"""``--resume``: which (name, type) pairs an interrupted run already wrote, exactly.

The output is read record by record. A record counts only when it is complete: its line
ends with a newline and parses (a text-format block also has every record line its header
announces). A kill (even SIGKILL) can only tear the end of the file, so the file is cut back
to the end of the last complete record, and the pairs before it are skipped by the new run,
which appends. No pair is lost (a torn one is redone) and none is written twice.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator

from .writers import CSV_FIELDS, CsvWriter

Pair = tuple[str, str]
_TEXT_HEADER = re.compile(r";; (\S+) (\S+) (.*?) \((\d+) records, ")


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(offset just after the line, line) for every newline-terminated line; a torn tail is left out."""
    offset = 0
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return
            offset += len(line)
            yield offset, line


def _jsonl(path: str) -> tuple[set[Pair], int]:
    done: set[Pair] = set()
    good = 0
    for end, line in _lines(path):
        try:
            record = json.loads(line)
            pair = (record["name"], record["type"])
        except (ValueError, KeyError, TypeError):
            break
        done.add(pair)
        good = end
    return done, good


def _csv(path: str) -> tuple[set[Pair], int]:
    done: set[Pair] = set()
    good = 0
    for end, line in _lines(path):
        text = line.decode("utf-8", "replace")
        if good == 0 and text == CsvWriter.header:
            good = end
            continue
        try:
            rows = list(csv.reader([text]))
        except csv.Error:
            break
        if len(rows) != 1 or len(rows[0]) != len(CSV_FIELDS):
            break
        done.add((rows[0][0], rows[0][1]))
        good = end
    return done, good


def _text(path: str) -> tuple[set[Pair], int]:
    done: set[Pair] = set()
    good = 0
    pending: tuple[Pair, int] | None = None  # the current block's pair and record lines still due
    for end, line in _lines(path):
        text = line.decode("utf-8", "replace")
        if pending is not None:
            if text.startswith(";; "):
                break  # a header where a record line was due: the block is torn
            pair, due = pending
            due -= 1
            pending = (pair, due)
            if due == 0:
                done.add(pair)
                good, pending = end, None
            continue
        match = _TEXT_HEADER.match(text)
        if match is None:
            break
        _status, rdtype, name, count = match.groups()
        if int(count) == 0:
            done.add((name, rdtype))
            good = end
        else:
            pending = ((name, rdtype), int(count))
    return done, good


READERS = {"jsonl": _jsonl, "csv": _csv, "text": _text}


def completed_pairs(path: str, fmt: str, *, repair: bool = True) -> set[Pair]:
    """The pairs written completely to ``path``; with ``repair``, cut off any torn tail."""
    if not os.path.exists(path):
        return set()
    done, good = READERS[fmt](path)
    if repair and os.path.getsize(path) != good:
        os.truncate(path, good)
    return done
