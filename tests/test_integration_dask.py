"""Bulk resolution on a dask.distributed LocalCluster of worker processes, against the lab.

The lab runs in this process (in a thread); the workers are separate processes that reach
its stub server over loopback, each with one resolver shared by its partitions.
"""

from __future__ import annotations

import functools
import json

import dask.bag as db
import dask.dataframe as dd
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from asyncresolve import Resolver
from asyncresolve.backends import CaresBackend
from asyncresolve.integrations import dask as ar_dask
from asyncresolve.testing import DNSLab

N = 300
ZONE = "\n".join(
    ["@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 120", "mx 300 IN MX 10 mail"]
    + [f"h{i} 300 IN A 192.0.2.{i % 250 + 1}" for i in range(N)]
)
ZONES = {"dask.test.": ZONE}


def lab_resolver(stub: str) -> Resolver:
    """The factory each worker calls (module-level, so it pickles)."""
    return Resolver([CaresBackend([stub])], timeout=3.0)


@pytest.fixture(scope="module")
def lab_and_client():
    with DNSLab(ZONES) as lab, LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                            host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield lab, client


def _names() -> list[str]:
    names = [f"h{i}.dask.test" for i in range(N)]
    return [*names, "missing.dask.test", "mx.dask.test", "bad..name"]


def test_bag_resolves_every_name_once_with_bulk_fields(lab_and_client) -> None:
    lab, client = lab_and_client
    factory = functools.partial(lab_resolver, f"{lab.stub_server[0]}:{lab.stub_server[1]}")
    bag = db.from_sequence(_names(), npartitions=8)
    records = ar_dask.resolve_bag(bag, ["A"], resolver_factory=factory, concurrency=50).compute()
    by_name = {r["name"]: r for r in records}
    assert len(records) == len(by_name) == N + 3
    assert by_name["h7.dask.test."]["status"] == "NOERROR"
    assert by_name["h7.dask.test."]["data"]["answers"] == [
        {"name": "h7.dask.test.", "type": "A", "class": "IN", "ttl": 300, "data": "192.0.2.8"}]
    assert by_name["missing.dask.test."]["status"] == "NXDOMAIN"
    assert by_name["mx.dask.test."]["status"] == "NODATA"
    assert by_name["bad..name"]["status"] == "INVALID"
    assert {r["source"] for r in records if r["status"] == "NOERROR"} == {"cares"}
    # Eight partitions, two worker processes: one resolver per worker, shared by its partitions.
    counts = client.run(ar_dask.worker_resolver_count)
    assert len(counts) == 2
    assert all(c == 1 for c in counts.values())
    # Both workers did work, and the lab saw each name at most once per worker.
    assert max(len(lab.queries_for(f"h{i}.dask.test", "A")) for i in range(N)) <= 2


def test_dataframe_column(lab_and_client) -> None:
    lab, _client = lab_and_client
    factory = functools.partial(lab_resolver, f"{lab.stub_server[0]}:{lab.stub_server[1]}")
    frame = dd.from_pandas(pd.DataFrame({"host": [f"h{i}.dask.test" for i in range(40)] + ["missing.dask.test"]}),
                           npartitions=4)
    result = ar_dask.resolve_column(frame, "host", ["A", "MX"], resolver_factory=factory).compute()
    assert list(result.columns) == list(ar_dask.COLUMNS)
    assert len(result) == 41 * 2
    a = result[(result["name"] == "h3.dask.test.") & (result["type"] == "A")].iloc[0]
    assert a["status"] == "NOERROR"
    assert json.loads(a["answers"])[0]["data"] == "192.0.2.4"
    mx = result[(result["name"] == "h3.dask.test.") & (result["type"] == "MX")].iloc[0]
    assert mx["status"] == "NODATA"
    assert json.loads(mx["answers"]) == []
    assert set(result[result["name"] == "missing.dask.test."]["status"]) == {"NXDOMAIN"}


def test_workers_close_their_resolvers(lab_and_client) -> None:
    lab, client = lab_and_client
    factory = functools.partial(lab_resolver, f"{lab.stub_server[0]}:{lab.stub_server[1]}")
    ar_dask.resolve_bag(db.from_sequence(["h1.dask.test"], npartitions=1), resolver_factory=factory).compute()
    closed = client.run(ar_dask.close_worker_resolvers)
    assert sum(closed.values()) >= 1
    assert all(c == 0 for c in client.run(ar_dask.worker_resolver_count).values())
