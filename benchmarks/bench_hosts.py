"""A huge hosts file (ad-block style): load time, memory, lookups during a reload.

Builds a hosts file of ``--lines`` lines (default 1,000,000: 90 % ``0.0.0.0 adN.tracker``
lines sharing one address, 10 % ordinary ``10.x.y.z name alias`` lines) and measures:

* the first load (parse in a worker thread) and the resident memory it adds;
* lookups during a reload of the file: each must be answered from the old table, within
  its own deadline, while the parse runs; and the longest stall of the event loop;
* the peer measured in the same run: glibc's ``files`` source (``getaddrinfo``) on the
  same file, in a private mount namespace (``hosts: files`` only, so no DNS at all),
  which scans the file on every lookup. Needs root for ``unshare -m``; skipped otherwise.

Run: ``python benchmarks/bench_hosts.py [--lines N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asyncresolve import Resolver
from asyncresolve.backends import HostsBackend


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_hosts(path: Path, lines: int) -> None:
    with open(path, "w") as out:
        for i in range(lines):
            if i % 10 == 9:
                out.write(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255} host{i}.lan host{i}\n")
            else:
                out.write(f"0.0.0.0 ad{i}.tracker.example\n")


GLIBC_PEER = r"""
import socket, sys, time
names = sys.argv[1:]
started = time.perf_counter()
for name in names:
    socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
print((time.perf_counter() - started) / len(names))
"""


def glibc_per_lookup(path: Path, names: list[str], tmp: Path) -> float | None:
    if os.geteuid() != 0:
        return None
    (tmp / "nsswitch.conf").write_text("hosts: files\n")
    (tmp / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (tmp / "peer.py").write_text(GLIBC_PEER)
    script = (f'mount --bind "{path}" /etc/hosts && mount --bind "{tmp / "nsswitch.conf"}" /etc/nsswitch.conf'
              f' && mount --bind "{tmp / "resolv.conf"}" /etc/resolv.conf && exec "$0" "$@"')
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                          sys.executable, str(tmp / "peer.py"), *names],
                         capture_output=True, text=True, timeout=600, check=True)
    return float(out.stdout.strip())


async def main(lines: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "hosts"
        write_hosts(path, lines)
        size = path.stat().st_size / 1e6
        print(f"hosts file: {lines:,} lines, {size:.0f} MB")
        probe = [f"ad{lines // 2}.tracker.example", f"host{lines - 1 - (lines - 1) % 10 + 9 - 10}.lan"]

        gc.collect()
        before = rss_mb()
        backend = HostsBackend(path, reload_interval=3600)
        started = time.perf_counter()
        await backend.reload()
        load_s = time.perf_counter() - started
        gc.collect()
        added = rss_mb() - before
        print(f"first load                      {load_s:8.2f} s    +{added:,.0f} MB resident "
              f"({added * 1e6 / lines:.0f} bytes/line), {len(backend.table.names):,} names")

        async with Resolver([backend], cache=None, timeout=0.5) as resolver:
            started = time.perf_counter()
            n = 20_000
            for i in range(n):
                await resolver.resolve(probe[i & 1], "A")
            ours = (time.perf_counter() - started) / n
            print(f"lookup (no cache)               {ours * 1e6:8.1f} us")

            # the same lookup loop for 1 s without a reload: the machine's own stalls
            quiet_stall, last, until = 0.0, time.perf_counter(), time.perf_counter() + 1.0
            while time.perf_counter() < until:
                await resolver.resolve(probe[0], "A")
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                quiet_stall, last = max(quiet_stall, now - last), now

            # a reload: the file changes, lookups go on against the old table
            with open(path, "a") as out:  # noqa: ASYNC230 - one short line; the reload's stall is measured
                out.write("192.0.2.200 added.example\n")
            os.utime(path, (time.time() + 5, time.time() + 5))
            reload = asyncio.ensure_future(backend.reload())
            latencies: list[float] = []
            stall = 0.0
            last = time.perf_counter()
            while not reload.done():
                t0 = time.perf_counter()
                answer = await resolver.resolve(probe[0], "A")
                latencies.append(time.perf_counter() - t0)
                assert answer.addresses == ["0.0.0.0"]
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                stall, last = max(stall, now - last), now
            await reload
            assert (await resolver.resolve("added.example", "A")).addresses == ["192.0.2.200"]
            latencies.sort()
            print(f"reload with lookups running     {len(latencies):8,d} lookups answered from the old table; "
                  f"max {latencies[-1] * 1e3:.1f} ms (deadline 500 ms), "
                  f"p50 {latencies[len(latencies) // 2] * 1e6:.0f} us; longest loop stall {stall * 1e3:.0f} ms "
                  f"({quiet_stall * 1e3:.0f} ms without a reload)")

        peer = glibc_per_lookup(path, probe * 5, tmp)
        if peer is None:
            print("glibc files (peer)              skipped: needs root for a private mount namespace")
        else:
            print(f"glibc files getaddrinfo (peer)  {peer * 1e3:8.1f} ms per lookup (scans the file each time)")
            print(f"ratio glibc/ours per lookup     {peer / ours:8,.0f}x;  loads paid back after "
                  f"{load_s / peer:,.0f} glibc lookups")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().lines))
