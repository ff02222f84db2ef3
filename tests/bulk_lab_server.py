"""A lab for the 50,000-name bulk test, in its own process (the second core serves, the first resolves).

Prints the servers' addresses as one JSON line, serves until stdin gives a line, then prints
the peak number of queries the delayed servers held unanswered at once for a client still
waiting (held no longer than the client's timeout: what the client had in flight there) and
exits. Not a test module: tests/test_bulk_lab.py runs it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from asyncresolve.testing import AuthServer, DNSLab

HEAD = ["@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300", "@ 3600 IN NS ns1", "ns1 3600 IN A 127.0.0.1"]


def zone(*lines: str) -> str:
    return "\n".join([*HEAD, *lines]) + "\n"


def meter(servers: list[AuthServer], peak: list[int], delay: float, client_timeout: float) -> None:
    loop = asyncio.get_running_loop()
    for server in servers:
        original = server._datagram

        def measured(wire: bytes, addr: tuple[str, int], original=original) -> None:  # type: ignore[no-untyped-def]
            original(wire, addr)
            held = sum(len(s._delayed) for s in servers)
            if held > peak[0]:
                # A reply still held after the client's timeout answers a query the client has
                # given up on (reported TIMEOUT or sent again): no longer in flight for it. Only
                # possible when this process is starved for longer than that timeout.
                peak[1] = max(peak[1], held)
                received_before = loop.time() + delay - client_timeout  # a handle is due at arrival + delay
                held = sum(1 for s in servers for handle in s._delayed if handle.when() > received_before)
                peak[0] = max(peak[0], held)

        server._datagram = measured  # type: ignore[method-assign]


async def main(n_ok: int, n_nodata: int, delay: float, client_timeout: float) -> None:
    zones = {
        "ok.test.": zone(*(f"h{i} 300 IN A 10.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(n_ok)),
                         *(f"t{i} 300 IN TXT x" for i in range(n_nodata))),
        "fail.test.": zone(),
        "silent.test.": zone(),
    }
    async with DNSLab(zones, record_queries=False) as lab:
        ok, fail, silent = (lab.server_for(z) for z in ("ok.test.", "fail.test.", "silent.test."))
        for server in (ok, fail):
            server.max_delayed_replies = 1_000_000
            server.faults.delay = delay  # replies held a while: the servers see what is in flight
        fail.faults.servfail = True
        silent.faults.drop_rate = 1.0
        peak = [0, 0]  # held for the client; held in all, abandoned queries included
        meter([ok, fail], peak, delay, client_timeout)
        print(json.dumps({z: f"{s.host}:{s.port}" for z, s in
                          (("ok.test.", ok), ("fail.test.", fail), ("silent.test.", silent))}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print(json.dumps({"peak": peak[0], "peak_held": max(peak), "queries": lab.query_count}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
