"""A fleet-wide second-level cache in Redis behind each process's in-memory ``TTLCache``.

``Resolver(cache=RedisCache("redis://host:6379/0"))`` is the whole set-up
(``pip install asyncresolve[redis]``). How it behaves:

* **Two levels.** The in-memory ``TTLCache`` (this object) stays the first level: a hit
  there is the same lock-free, task-free dict lookup as without Redis. A miss asks Redis
  before going upstream; an upstream answer (or NXDOMAIN/NODATA) is written to both, with
  Redis's own expiry set from the record TTL, so every process sees the remaining TTL.
* **Fleet-wide coalescing** (``coalesce=True``): the first process to miss a name takes a
  short lease (``SET NX PX``) and resolves; the others poll for its result for at most
  half of their remaining time, then resolve themselves. Nobody waits past its own
  deadline because of another process.
* **Redis is optional at run time.** Every Redis call is bounded by ``op_timeout`` (and the
  caller's deadline); after ``failure_threshold`` failures in a row a circuit breaker skips
  Redis for ``retry_after`` seconds (one warning), then tries again: lookups go on from the
  first level and upstream meanwhile, and callers never see a Redis error.
* **Untrusted contents.** Values are versioned JSON that name their own key; anything that
  does not parse, names another key, or holds records that do not validate is ignored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import records as _records
from .answer import Answer
from .cache import CacheKey, TTLCache
from .errors import NegativeAnswer, NoAnswer, NXDomain

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_RECORD_CLASSES: dict[str, type[_records.Record]] = {
    cls.rdtype: cls for cls in (
        _records.ARecord, _records.AAAARecord, _records.CNAMERecord, _records.DNAMERecord, _records.NSRecord,
        _records.PTRRecord, _records.MXRecord, _records.SRVRecord, _records.TXTRecord, _records.SOARecord,
        _records.CAARecord, _records.NAPTRRecord,
    )
}
_NEGATIVES: dict[str, type[NegativeAnswer]] = {"NXDOMAIN": NXDomain, "NODATA": NoAnswer}
# Compare-and-delete: only the lease's owner releases it.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class InvalidEntry(ValueError):
    """A value under one of our keys that we did not write, or not in this version's form."""


# -- the stored form ----------------------------------------------------------------------------

def _field_to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return [_field_to_json(v) for v in value]
    return value


def _field_from_json(value: Any, kind: Any) -> Any:
    if kind in ("bytes", bytes):
        if not (isinstance(value, dict) and isinstance(value.get("b"), str)):
            raise InvalidEntry("bytes field")
        return base64.b64decode(value["b"], validate=True)
    if kind in ("int", int):
        if type(value) is not int:
            raise InvalidEntry("int field")
        return value
    if kind in ("str", str):
        if not isinstance(value, str):
            raise InvalidEntry("str field")
        return value
    if isinstance(kind, str) and kind.startswith("tuple[bytes"):
        if not isinstance(value, list):
            raise InvalidEntry("tuple field")
        return tuple(_field_from_json(v, bytes) for v in value)
    raise InvalidEntry(f"field of type {kind!r}")


def record_to_json(record: _records.Record) -> list[Any]:
    """``[type, name, ttl, field...]`` for one record."""
    if isinstance(record, _records.GenericRecord):
        return ["*", record.name, record.ttl, record.type_name, record.data]
    fields = [getattr(record, f.name) for f in dataclasses.fields(record)][2:]
    return [record.rdtype, record.name, record.ttl, *(_field_to_json(v) for v in fields)]


def record_from_json(data: Any) -> _records.Record:
    if not isinstance(data, list) or len(data) < 3:
        raise InvalidEntry("record")
    rdtype, name, ttl, *values = data
    if not isinstance(name, str) or type(ttl) is not int or not 0 <= ttl < 2**31:
        raise InvalidEntry("record owner or TTL")
    if rdtype == "*":
        if len(values) != 2 or not all(isinstance(v, str) for v in values):
            raise InvalidEntry("generic record")
        return _records.GenericRecord(name, ttl, values[0], values[1])
    cls = _RECORD_CLASSES.get(rdtype)
    if cls is None:
        raise InvalidEntry(f"record type {rdtype!r}")
    fields = dataclasses.fields(cls)[2:]
    if len(values) != len(fields):
        raise InvalidEntry("record fields")
    args = [_field_from_json(v, f.type) for v, f in zip(values, fields, strict=True)]
    record = cls(name, ttl, *args)
    if isinstance(record, _records.ARecord | _records.AAAARecord):
        version = 4 if isinstance(record, _records.ARecord) else 6
        try:
            if ipaddress.ip_address(record.address).version != version:
                raise InvalidEntry("address family")
        except ValueError as exc:
            raise InvalidEntry("address") from exc
    return record


def _key_text(key: CacheKey) -> str:
    if isinstance(key, tuple):
        return "|".join(str(part) for part in key)
    return str(key)


def encode_answer(key: CacheKey, answer: Answer) -> bytes:
    """The stored form of a positive answer (versioned JSON that names its key)."""
    return json.dumps({
        "v": FORMAT_VERSION, "k": _key_text(key), "kind": "answer", "ttl": answer.original_ttl,
        "source": answer.source, "canonical": answer.canonical_name,
        "chain": [record_to_json(r) for r in answer.cname_chain],
        "records": [record_to_json(r) for r in answer._records],
    }, separators=(",", ":")).encode()


def encode_negative(key: CacheKey, error: NegativeAnswer, ttl: int) -> bytes:
    kind = "NXDOMAIN" if isinstance(error, NXDomain) else "NODATA"
    return json.dumps({
        "v": FORMAT_VERSION, "k": _key_text(key), "kind": kind, "ttl": ttl, "source": error.source,
        "canonical": error.canonical_name, "chain": [record_to_json(r) for r in error.cname_chain],
        "soa": record_to_json(error.soa) if error.soa is not None else None,
    }, separators=(",", ":")).encode()


def decode(key: CacheKey, raw: bytes, remaining_ms: int, clock: Callable[[], float]) -> Answer | NegativeAnswer:
    """Rebuild what ``encode_*`` stored, re-timed to Redis's remaining TTL; ``InvalidEntry``
    for anything else."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEntry("not JSON") from exc
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION or data.get("k") != _key_text(key):
        raise InvalidEntry("version or key")
    name, rdtype = (key[0], key[1]) if isinstance(key, tuple) else (str(key), "")
    original = data.get("ttl")
    source = data.get("source")
    canonical = data.get("canonical")
    if type(original) is not int or not isinstance(source, str | None) or not isinstance(canonical, str | None):
        raise InvalidEntry("header")
    remaining = min(original, remaining_ms // 1000)
    elapsed = original - remaining
    links = [_aged(record_from_json(r), elapsed) for r in _as_list(data.get("chain"))]
    chain = tuple(r for r in links if isinstance(r, _records.CNAMERecord))
    if len(chain) != len(links):
        raise InvalidEntry("CNAME chain")
    kind = data.get("kind")
    if kind == "answer":
        records = tuple(_aged(record_from_json(r), elapsed) for r in _as_list(data.get("records")))
        if not records or not isinstance(source, str) or any(r.rdtype != rdtype for r in records):
            raise InvalidEntry("answer records")
        return Answer(name, rdtype, records, source, cname_chain=chain,
                      canonical_name=canonical, ttl=remaining, clock=clock, from_cache=True)
    error_type = _NEGATIVES.get(kind) if isinstance(kind, str) else None
    if error_type is None:
        raise InvalidEntry(f"kind {kind!r}")
    soa_data = data.get("soa")
    soa = _aged(record_from_json(soa_data), elapsed) if soa_data is not None else None
    if soa is not None and not isinstance(soa, _records.SOARecord):
        raise InvalidEntry("SOA")
    return error_type(name=name, rdtype=rdtype, source=source, ttl=remaining, soa=soa,
                      from_cache=True, cname_chain=chain, canonical_name=canonical)


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidEntry("list")
    return value


def _aged(record: _records.Record, elapsed: int) -> _records.Record:
    return record.with_ttl(max(0, record.ttl - elapsed)) if elapsed > 0 else record


# -- availability -------------------------------------------------------------------------------

class CircuitBreaker:
    """Skips Redis for ``retry_after`` seconds after ``threshold`` failures in a row."""

    def __init__(self, threshold: int, retry_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.retry_after = retry_after
        self.clock = clock
        self.failures = 0
        self.open_until = 0.0
        self.trips = 0

    @property
    def is_open(self) -> bool:
        return self.failures >= self.threshold and self.clock() < self.open_until

    def allows(self) -> bool:
        """True while closed, and for a trial call once ``retry_after`` has passed."""
        return not self.is_open

    def succeeded(self) -> None:
        if self.failures >= self.threshold:
            log.warning("Redis shared cache is reachable again")
        self.failures = 0

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        if self.failures < self.threshold or self.clock() < self.open_until:
            return
        if self.failures == self.threshold:
            log.warning("Redis shared cache unavailable (%r): resolving without it for %.1f s",
                        error, self.retry_after)
            self.trips += 1
        self.open_until = self.clock() + self.retry_after


# -- the cache ----------------------------------------------------------------------------------

class RedisCache(TTLCache):
    """An in-memory ``TTLCache`` with Redis as a second level shared by many processes.

    :param url_or_client: a ``redis://`` URL, or a ``redis.asyncio.Redis`` client (yours to
        close) .
    :param prefix: namespace of our keys (the format version is part of it).
    :param coalesce: fleet-wide coalescing through a short lease (see the module docstring).
    :param lease_time: how long a lease holds, in seconds, if its holder never reports back.
    :param op_timeout: bound on one Redis round trip, in seconds.
    :param failure_threshold: / :param retry_after: the circuit breaker.
    :param poll_interval: first interval of a waiter's polling (it doubles up to 50 ms).
    :param cache_options: the in-memory level's options (``max_entries``, ``min_ttl``...).
    """

    def __init__(
        self,
        url_or_client: Any,
        *,
        prefix: str = "asyncresolve:v1:",
        coalesce: bool = True,
        lease_time: float = 2.0,
        op_timeout: float = 0.1,
        failure_threshold: int = 3,
        retry_after: float = 5.0,
        poll_interval: float = 0.005,
        **cache_options: Any,
    ) -> None:
        super().__init__(**cache_options)
        if isinstance(url_or_client, str):
            self._url: str | None = url_or_client
            self._client: Any = None
        else:
            self._url = None
            self._client = url_or_client
        self.prefix = prefix
        self.coalesce = coalesce
        self.lease_time = lease_time
        self.op_timeout = op_timeout
        self.poll_interval = poll_interval
        self.breaker = CircuitBreaker(failure_threshold, retry_after)
        self._writes: set[asyncio.Task[None]] = set()
        self._release: Any = None
        self.shared_hits = 0
        self.shared_misses = 0
        self.shared_errors = 0
        self.invalid_entries = 0
        self.lease_waits = 0
        self.lease_wait_hits = 0

    @property
    def second_level(self) -> RedisCache:
        """What the resolver calls on a first-level miss."""
        return self

    # -- Redis plumbing ----------------------------------------------------------------
    def _redis(self) -> Any:
        if self._client is None:
            try:
                import redis.asyncio as aioredis
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ImportError("RedisCache needs redis-py: pip install 'asyncresolve[redis]'") from exc
            self._client = aioredis.Redis.from_url(str(self._url), socket_connect_timeout=self.op_timeout)
        return self._client

    async def _call(self, deadline: float | None, op: Callable[[Any], Awaitable[Any]]) -> Any:
        """One bounded Redis operation; raises ``_Unavailable`` (after counting) on any failure."""
        if not self.breaker.allows():
            raise _Unavailable
        limit = self.op_timeout
        if deadline is not None:
            limit = min(limit, deadline - asyncio.get_running_loop().time())
            if limit <= 0:
                raise _Unavailable
        try:
            async with asyncio.timeout(limit):
                result = await op(self._redis())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection refused, timeout, protocol: Redis is optional
            self.shared_errors += 1
            self.breaker.failed(exc)
            raise _Unavailable from exc
        self.breaker.succeeded()
        return result

    def _key(self, key: CacheKey) -> str:
        return self.prefix + _key_text(key)

    # -- what the resolver calls -------------------------------------------------------
    async def fetch(self, key: CacheKey, deadline: float, resolve: Callable[[], Awaitable[Answer]]) -> Answer:
        """The answer for ``key``: from Redis if another process has it, else ``resolve()``
        (after waiting, within our own deadline, for a process that holds the lease)."""
        found = await self._read(key, deadline)
        if found is not None:
            self.shared_hits += 1
            return _deliver(found)
        self.shared_misses += 1
        token = None
        if self.coalesce:
            token = secrets.token_hex(8)
            if not await self._take_lease(key, token, deadline):
                token = None
                found = await self._wait_for_holder(key, deadline)
                if found is not None:
                    self.lease_wait_hits += 1
                    return _deliver(found)
        try:
            answer = await resolve()
        except NegativeAnswer as error:
            self._write_later(key, token, negative=error)
            raise
        except BaseException:
            self._write_later(key, token)
            raise
        self._write_later(key, token, answer=answer)
        return answer

    async def _read(self, key: CacheKey, deadline: float | None) -> Answer | NegativeAnswer | None:
        redis_key = self._key(key)

        async def get(client: Any) -> Any:
            async with client.pipeline(transaction=False) as pipe:
                pipe.get(redis_key)
                pipe.pttl(redis_key)
                return await pipe.execute()

        try:
            raw, remaining_ms = await self._call(deadline, get)
        except _Unavailable:
            return None
        if raw is None or not isinstance(remaining_ms, int) or remaining_ms < 1000:
            return None
        try:
            return decode(key, raw, remaining_ms, self.clock)
        except (InvalidEntry, ValueError, TypeError):
            self.invalid_entries += 1
            return None

    async def _take_lease(self, key: CacheKey, token: str, deadline: float) -> bool:
        lease_key = self._key(key) + "|lease"
        try:
            taken = await self._call(deadline, lambda c: c.set(lease_key, token, nx=True,
                                                                  px=int(self.lease_time * 1000)))
        except _Unavailable:
            return True  # no Redis, no fleet: resolve ourselves
        return bool(taken)

    async def _wait_for_holder(self, key: CacheKey, deadline: float) -> Answer | NegativeAnswer | None:
        """Poll for the lease holder's result for at most half of our remaining time."""
        self.lease_waits += 1
        loop = asyncio.get_running_loop()
        give_up = loop.time() + min(self.lease_time, (deadline - loop.time()) / 2)
        lease_key = self._key(key) + "|lease"
        interval = self.poll_interval
        while loop.time() + interval < give_up:
            await asyncio.sleep(interval)
            interval = min(interval * 2, 0.05)
            found = await self._read(key, give_up)
            if found is not None:
                return found
            try:
                if not await self._call(give_up, lambda c: c.exists(lease_key)):
                    return await self._read(key, give_up)  # released: the result, or nothing
            except _Unavailable:
                return None
        return None

    def _write_later(self, key: CacheKey, token: str | None, *, answer: Answer | None = None,
                     negative: NegativeAnswer | None = None) -> None:
        """Publish the result (and release our lease) without delaying the caller."""
        if not self.breaker.allows() and token is None:
            return
        task = asyncio.get_running_loop().create_task(self._write(key, token, answer, negative))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, key: CacheKey, token: str | None, answer: Answer | None,
                     negative: NegativeAnswer | None) -> None:
        redis_key = self._key(key)
        value: bytes | None = None
        ttl = 0
        if answer is not None:
            ttl = int(min(max(answer.original_ttl, self.min_ttl), self.max_ttl))
            value = encode_answer(key, answer)
        elif negative is not None:
            ttl = int(max(0, min(self.negative_ttl if negative.ttl is None else negative.ttl,
                                 self.negative_max_ttl)))
            value = encode_negative(key, negative, ttl)

        async def publish(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                if value is not None and ttl > 0:
                    pipe.set(redis_key, value, px=ttl * 1000)
                if token is not None:
                    pipe.eval(_RELEASE, 1, redis_key + "|lease", token)
                await pipe.execute()

        if (value is None or ttl <= 0) and token is None:
            return
        with contextlib.suppress(_Unavailable):
            await self._call(None, publish)

    # -- lifecycle ---------------------------------------------------------------------
    async def flush(self) -> None:
        """Wait for the writes still on their way to Redis."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def aclose(self) -> None:
        """Finish pending writes; close the connection pool if we opened it."""
        await self.flush()
        if self._url is not None and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def shared_stats(self) -> dict[str, int | bool]:
        """Counters of the second level, for monitoring."""
        return {
            "shared_hits": self.shared_hits, "shared_misses": self.shared_misses,
            "shared_errors": self.shared_errors, "invalid_entries": self.invalid_entries,
            "lease_waits": self.lease_waits, "lease_wait_hits": self.lease_wait_hits,
            "breaker_open": self.breaker.is_open, "breaker_trips": self.breaker.trips,
        }


class _Unavailable(Exception):
    """Redis could not be used for this operation (already counted)."""


def _deliver(found: Answer | NegativeAnswer) -> Answer:
    if isinstance(found, NegativeAnswer):
        raise found
    return found


__all__ = ["CircuitBreaker", "InvalidEntry", "RedisCache", "decode", "encode_answer", "encode_negative"]
