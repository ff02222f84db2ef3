"""What the per-query paths leave for the garbage collector.

Every object a lookup keeps alive while its query is out is walked by each young
collection, and an object made per query costs its allocation even when it dies at once.
Closure cells are the easy ones to make by accident: a lambda or a comprehension anywhere
in a function makes the variables it reads cells, created at every call of the function,
on every path through it (the lambda of a rare branch included).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import types

from asyncresolve.answer import Answer
from asyncresolve.backends.base import Query
from asyncresolve.backends.cares import CaresBackend, _Channel
from asyncresolve.backends.iterative.transport import Transport
from asyncresolve.backends.native import _usual_tail, usual_answer
from asyncresolve.testing.peers import random_loopback_address
from asyncresolve.wire import message, name_to_wire_0x20

PER_QUERY = {
    "Answer.records": Answer.records.fget,  # read by every caller of every answer
    "CaresBackend.resolve": CaresBackend.resolve,
    "_Channel.add": _Channel.add,
    "usual_answer": usual_answer,  # the native stub's reading of nearly every reply
    "_usual_tail": _usual_tail,  # ... and of an authoritative server's referral data in it
    "name_to_wire_0x20": name_to_wire_0x20,  # the native stub's query name, per query
    "wire.records": message.records,
    "Transport._udp": Transport._udp,  # the iterative backend's exchange, alive while the query is out
}


def test_the_per_query_functions_make_no_closure_cells() -> None:
    # Each had some (2, 4, 1, 3, 3 and 1): a lambda or a comprehension of a branch rarely
    # taken, or of the common one; those now live in functions of their own.
    made = {name: function.__code__.co_cellvars for name, function in PER_QUERY.items()}
    assert made == {name: () for name in PER_QUERY}


async def test_cares_lookups_in_flight_keep_no_closure_cells() -> None:
    """200 c-ares queries waiting on a server that never answers: the cells alive with them."""
    address = random_loopback_address()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((address, 0))  # receives the queries, answers none
    port = silent.getsockname()[1]
    backend = CaresBackend([f"{address}:{port}"], timeout=5.0, tries=1)
    loop = asyncio.get_running_loop()
    try:
        def cells() -> int:
            return sum(1 for o in gc.get_objects() if type(o) is types.CellType)

        await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(backend._start())), 5)
        before = cells()
        tasks = [asyncio.ensure_future(backend.resolve(Query(f"n{i}.silent.test.", "A", loop.time() + 5)))
                 for i in range(200)]
        while len(backend._channel.pending) < 200:  # type: ignore[union-attr]  # noqa: ASYNC110 - every query sent
            await asyncio.sleep(0)
        assert cells() - before < 50  # 4 per lookup before (800)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await backend.aclose()
        silent.close()
