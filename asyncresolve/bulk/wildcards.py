"""Wildcard detection: is an answer just what the parent zone's wildcard gives any name?

For the parent of each answered name (``www.example.com.`` -> ``example.com.``), random
labels that cannot exist (``x7k2...``) are resolved with the same type. If they get
answers, the parent has a wildcard, and an answer whose data are all among the wildcard's
is marked (``BulkResult.wildcard = True``). The verdict is cached per (parent, type), and
concurrent names under the same parent wait for one probe, so a zone costs ``probes``
queries however many of its names are in the input. Tools such as puredns and dnsx do the
same; massdns lists it as a to-do.
"""

from __future__ import annotations

import asyncio
import random
import string
from typing import TYPE_CHECKING, Any

from ..errors import ResolveError

if TYPE_CHECKING:
    from ..answer import Answer
    from ..resolver import Resolver
    from .limiter import TokenBucket

_ALPHABET = string.ascii_lowercase + string.digits
Verdict = frozenset[str] | None  # the wildcard's record data, or None: no wildcard


def _signature(answer: Answer) -> frozenset[str]:
    return frozenset(record.text for record in answer.records)


class WildcardDetector:
    """Probe each parent zone once (``probes`` random names) and remember the verdict."""

    def __init__(self, resolver: Resolver, *, probes: int = 2, label_length: int = 16,
                 max_zones: int = 100_000, timeout: float | None = None) -> None:
        if probes < 1:
            raise ValueError("probes must be >= 1")
        self.resolver = resolver
        self.probes = probes
        self.label_length = label_length
        self.max_zones = max_zones
        self.timeout = timeout
        self._verdicts: dict[tuple[str, str], Verdict | asyncio.Future[Verdict]] = {}
        self.probes_sent = 0

    def random_label(self) -> str:
        return "".join(random.choices(_ALPHABET, k=self.label_length))

    async def matches(self, answer: Answer, bucket: TokenBucket | None = None) -> bool:
        """True when ``answer`` carries nothing but its parent's wildcard data."""
        parent = answer.name.partition(".")[2]
        if not parent or parent == ".":
            return False
        wildcard = await self.verdict(parent, answer.rdtype, bucket)
        return wildcard is not None and _signature(answer) <= wildcard

    async def verdict(self, parent: str, rdtype: str, bucket: TokenBucket | None = None) -> Verdict:
        """The wildcard data under ``parent`` for ``rdtype`` (None when it has no wildcard)."""
        key = (parent, rdtype)
        known = self._verdicts.get(key, self)
        if known is not self:
            if isinstance(known, asyncio.Future):
                return await asyncio.shield(known)
            return known  # type: ignore[return-value]  # self is the miss sentinel, ruled out above
        if len(self._verdicts) >= self.max_zones:
            self._verdicts.clear()
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._verdicts[key] = future
        try:
            result = await self._probe(parent, rdtype, bucket)
        except BaseException:
            del self._verdicts[key]
            future.cancel()
            raise
        self._verdicts[key] = result
        future.set_result(result)
        return result

    async def _probe(self, parent: str, rdtype: str, bucket: TokenBucket | None) -> Verdict:
        data: set[str] = set()
        for _ in range(self.probes):
            if bucket is not None:
                await bucket.acquire()
            self.probes_sent += 1
            try:
                answer: Any = await self.resolver.resolve(f"{self.random_label()}.{parent}", rdtype, self.timeout)
            except ResolveError:
                continue  # NXDOMAIN/NODATA: no wildcard; a failure: no evidence of one
            data |= _signature(answer)
        return frozenset(data) or None

    def __len__(self) -> int:
        return len(self._verdicts)
