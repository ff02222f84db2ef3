"""Bulk resolution on a Dask cluster: a bag of names, or a dataframe column, partition by partition.

Each partition is one ``resolve_many`` run inside the worker that holds it. A worker keeps
one event loop (in a thread of its own) and one ``Resolver`` per resolver factory for its
whole life, so partitions share the worker's cache, coalescing and sockets, whichever of
the worker's threads runs them. Results have the fields of ``asyncresolve bulk``'s JSON
lines (``asyncresolve.bulk.to_json``).

``pip install 'asyncresolve[dask]'``::

    import dask.bag as db
    from asyncresolve.integrations.dask import resolve_bag

    results = resolve_bag(db.from_sequence(names, npartitions=8), ["A", "AAAA"]).compute()

The resolver is made on the worker by ``resolver_factory``, a picklable callable taking no
argument (a module-level function or a ``functools.partial``); the default,
``asyncresolve.Resolver``, builds the default chain from the worker's own resolv.conf.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from asyncresolve import Resolver
from asyncresolve.bulk import resolve_many, to_json

try:
    import dask.bag
    import dask.base
    import dask.dataframe
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError("asyncresolve.integrations.dask needs dask: pip install 'asyncresolve[dask]'") from exc

ResolverFactory = Callable[[], Resolver]

#: The columns of ``resolve_column``'s result, in order.
COLUMNS = ("name", "type", "class", "status", "answers", "resolver", "source", "elapsed", "tries", "error")


class _WorkerResolver:
    """One event loop thread and one resolver in a worker process, reused by every partition."""

    def __init__(self, factory: ResolverFactory) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="asyncresolve-dask", daemon=True)
        self.thread.start()
        self.resolver: Resolver = self.run(self._make(factory))

    @staticmethod
    async def _make(factory: ResolverFactory) -> Resolver:
        return factory()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.run(self.resolver.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


_workers: dict[str, _WorkerResolver] = {}
_workers_lock = threading.Lock()


def worker_resolver(factory: ResolverFactory = Resolver) -> _WorkerResolver:
    """This process's resolver for ``factory`` (made on first use, then shared)."""
    token = dask.base.tokenize(factory)
    with _workers_lock:
        worker = _workers.get(token)
        if worker is None:
            worker = _workers[token] = _WorkerResolver(factory)
        return worker


def close_worker_resolvers() -> int:
    """Close this process's resolvers (``client.run(close_worker_resolvers)`` on a cluster);
    returns how many there were."""
    with _workers_lock:
        workers = list(_workers.values())
        _workers.clear()
    for worker in workers:
        worker.close()
    return len(workers)


def worker_resolver_count() -> int:
    """How many resolvers this process holds (one per factory)."""
    return len(_workers)


async def _collect(resolver: Resolver, names: Sequence[Any], rdtypes: tuple[str, ...],
                   options: dict[str, Any]) -> list[dict[str, Any]]:
    return [to_json(result) async for result in resolve_many(resolver, names, rdtypes, **options)]


def resolve_partition(names: Iterable[Any], rdtypes: Sequence[str] = ("A",), *,
                      resolver_factory: ResolverFactory = Resolver, **options: Any) -> list[dict[str, Any]]:
    """Resolve one partition on this worker; one bulk record (a dict) per (name, type)."""
    worker = worker_resolver(resolver_factory)
    records: list[dict[str, Any]] = worker.run(_collect(worker.resolver, list(names), tuple(rdtypes), options))
    return records


def resolve_bag(bag: dask.bag.Bag, rdtypes: Sequence[str] = ("A",), *,
                resolver_factory: ResolverFactory = Resolver, **options: Any) -> dask.bag.Bag:
    """A bag of bulk records (dicts, as ``asyncresolve bulk --format jsonl`` writes them) for
    a bag of names. ``options`` are ``resolve_many``'s (``concurrency``, ``rate``,
    ``retries``, ``timeout``...), applied per partition."""
    # dask.bag is unannotated
    result: dask.bag.Bag = bag.map_partitions(  # type: ignore[no-untyped-call]
        resolve_partition, tuple(rdtypes), resolver_factory=resolver_factory, **options)
    return result


def _frame(names: Any, rdtypes: tuple[str, ...], resolver_factory: ResolverFactory,
           options: dict[str, Any]) -> Any:
    import pandas as pd

    rows = []
    for record in resolve_partition(names.dropna().tolist(), rdtypes, resolver_factory=resolver_factory,
                                    **options):
        row = {column: record.get(column) for column in COLUMNS}
        row["answers"] = json.dumps(record["data"]["answers"])
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(_meta_types())


def _meta_types() -> dict[str, str]:
    return {"name": "object", "type": "object", "class": "object", "status": "object", "answers": "object",
            "resolver": "object", "source": "object", "elapsed": "float64", "tries": "int64", "error": "object"}


def resolve_column(frame: dask.dataframe.DataFrame | dask.dataframe.Series, column: str | None = None,
                   rdtypes: Sequence[str] = ("A",), *, resolver_factory: ResolverFactory = Resolver,
                   **options: Any) -> dask.dataframe.DataFrame:
    """A dataframe with one row per (name, type) for the names in ``frame[column]`` (or the
    series ``frame``): the bulk record's fields as columns (``COLUMNS``), ``answers`` as the
    JSON text of ``data.answers``. Rows come in completion order within each partition."""
    import pandas as pd

    series = frame[column] if column is not None else frame
    meta = pd.DataFrame({c: pd.Series(dtype=t) for c, t in _meta_types().items()})
    result: dask.dataframe.DataFrame = series.map_partitions(_frame, tuple(rdtypes), resolver_factory, options,
                                                            meta=meta)
    return result


__all__ = [
    "COLUMNS",
    "close_worker_resolvers",
    "resolve_bag",
    "resolve_column",
    "resolve_partition",
    "worker_resolver",
    "worker_resolver_count",
]
