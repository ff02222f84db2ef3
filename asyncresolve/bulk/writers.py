"""Output formats of ``asyncresolve bulk``: JSON lines, CSV and a dig-like text form.

Every format writes one record per (name, type) in a single ``write`` call, and ``--resume``
(see ``resume.py``) can tell a complete record from one torn by a kill.

JSON lines follow the layout massdns's and zdns's JSON users parse::

    {"name": "www.example.test.", "type": "A", "class": "IN", "status": "NOERROR",
     "data": {"answers": [{"name": "www.example.test.", "type": "A", "class": "IN",
                           "ttl": 60, "data": "192.0.2.10"}]},
     "resolver": "127.0.0.1:53", "source": "cares", "elapsed": 0.0011, "tries": 1}

``data.answers`` lists the CNAME chain first, then the records of the asked type; it is
empty for every other status, where ``error`` holds the message. ``wildcard`` is added
when wildcard detection is on.
"""

from __future__ import annotations

import csv
import io
from json.encoder import encode_basestring
from typing import IO, Any

from .result import NOERROR, BulkResult

CSV_FIELDS = ("name", "type", "status", "ttl", "data", "resolver", "source", "elapsed", "tries", "wildcard")


def _answers(result: BulkResult) -> list[Any]:
    answer = result.answer
    if answer is None:
        return []
    return [*answer.cname_chain, *answer.records]


def to_json(result: BulkResult) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": result.name,
        "type": result.rdtype,
        "class": "IN",
        "status": result.status,
        "data": {"answers": [
            {"name": r.name, "type": r.rdtype, "class": "IN", "ttl": r.ttl, "data": r.text}
            for r in _answers(result)
        ]},
        "resolver": result.resolver,
        "source": result.source,
        "elapsed": round(result.elapsed, 6),
        "tries": result.tries,
    }
    if result.error is not None:
        record["error"] = str(result.error)
        ttl = getattr(result.error, "ttl", None)
        if ttl is not None:
            record["data"]["negative_ttl"] = ttl
    if result.wildcard is not None:
        record["wildcard"] = result.wildcard
    return record


class Writer:
    """Writes results to a text stream; ``header`` is written first on an empty output."""

    header = ""

    def __init__(self, stream: IO[str], *, fresh: bool = True) -> None:
        self.stream = stream
        self.written = 0
        if fresh and self.header:
            stream.write(self.header)

    def format(self, result: BulkResult) -> str:
        raise NotImplementedError

    def write(self, result: BulkResult) -> None:
        self.stream.write(self.format(result))
        self.written += 1

    def flush(self) -> None:
        self.stream.flush()


_quote = encode_basestring  # C-accelerated: a str as a JSON string literal


class JsonLinesWriter(Writer):
    """``to_json`` as one compact line. The common records are formatted directly (no dict, no
    generic encoder: this runs once per name at tens of thousands of names per second); the
    output is the same as ``json.dumps(to_json(result), separators=(",", ":"), ensure_ascii=False)``."""

    def format(self, result: BulkResult) -> str:
        answers = ",".join([
            f'{{"name":{_quote(r.name)},"type":{_quote(r.rdtype)},"class":"IN","ttl":{r.ttl},"data":{_quote(r.text)}}}'
            for r in _answers(result)
        ])
        error = result.error
        tail = ""
        if error is not None:
            ttl = getattr(error, "ttl", None)
            if ttl is not None:
                answers += f'],"negative_ttl":{int(ttl)}'
            else:
                answers += "]"
            tail = f',"error":{_quote(str(error))}'
        else:
            answers += "]"
        if result.wildcard is not None:
            tail += ',"wildcard":true' if result.wildcard else ',"wildcard":false'
        resolver = "null" if result.resolver is None else _quote(result.resolver)
        source = "null" if result.source is None else _quote(result.source)
        return (f'{{"name":{_quote(result.name)},"type":{_quote(result.rdtype)},"class":"IN",'
                f'"status":{_quote(result.status)},"data":{{"answers":[{answers}}},"resolver":{resolver},'
                f'"source":{source},"elapsed":{round(result.elapsed, 6)!r},"tries":{result.tries}{tail}}}\n')


class CsvWriter(Writer):
    """One row per (name, type); ``data`` joins the records' data with ``"; "``."""

    header = ",".join(CSV_FIELDS) + "\n"

    def __init__(self, stream: IO[str], *, fresh: bool = True) -> None:
        super().__init__(stream, fresh=fresh)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")

    def format(self, result: BulkResult) -> str:
        records = _answers(result)
        answer = result.answer
        data = "; ".join(r.text.replace("\n", "\\n") for r in records) if records else (
            str(result.error).replace("\n", "\\n") if result.error is not None else "")
        self._csv.writerow((
            result.name, result.rdtype, result.status, answer.ttl if answer is not None else "",
            data, result.resolver or "", result.source or "", f"{result.elapsed:.6f}", result.tries,
            "" if result.wildcard is None else int(result.wildcard),
        ))
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


class TextWriter(Writer):
    """dig-like: a ``;;`` header line per (name, type) saying how many record lines follow."""

    def format(self, result: BulkResult) -> str:
        records = _answers(result)
        where = result.source or "-"
        if result.resolver:
            where = f"{where}@{result.resolver}"
        extra = " wildcard" if result.wildcard else ""
        detail = f"; {result.error}" if result.error is not None and result.status != NOERROR else ""
        lines = [f";; {result.status} {result.rdtype} {result.name} ({len(records)} records, {where}, "
                 f"{result.elapsed * 1000:.1f} ms, {result.tries} tries{extra}{detail})"]
        lines.extend(str(r).replace("\n", "\\n") for r in records)
        return "\n".join(lines) + "\n"


WRITERS: dict[str, type[Writer]] = {"jsonl": JsonLinesWriter, "csv": CsvWriter, "text": TextWriter}
