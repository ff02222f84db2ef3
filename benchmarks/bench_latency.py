"""Cold lookups against a server that answers after a delay: where threads run out.

``sudo python benchmarks/bench_latency.py [--delays 0,0.002,0.01] [--names 2000] [--rounds 2]``

Scenario (1) of ``python -m benchmarks`` asks NSD on loopback, which answers in
microseconds: there ``getaddrinfo`` in the default executor's threads keeps up with the
async clients, because each thread's lookup is over almost as soon as it starts. A real
recursive resolver is a network hop away. This script serves the benchmark's flat zone from
the test kit's lab server (``asyncresolve.testing``) on a random ``127.x.y.z``, port 53,
delaying every answer by each of ``--delays`` in turn (the delay stands for the round trip
and the resolver's own work; the packets never leave loopback), and measures, in the same
run and in rotated order, raw pycares, ``Resolver`` + ``CaresBackend``, aiodns and
``loop.getaddrinfo`` in the default executor (glibc's stub, through this namespace's
``/etc/resolv.conf``, which names the lab server). The lab server is Python: its own
ceiling (a few thousand answers a second on a shared core) caps every async client alike,
so the ratios between async clients mean little here; the ratio to the threads is the point.

It runs in a private mount namespace (it re-executes itself under ``unshare -m``, so it needs
root), where ``/etc/resolv.conf`` names the lab server: nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

_FLAG = "ASYNCRESOLVE_BENCH_LATENCY_NS"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delays", default="0,0.002,0.01",
                        help="seconds each answer is held, comma-separated (default 0,0.002,0.01)")
    parser.add_argument("--names", type=int, default=2000, help="distinct names per pass (default 2000)")
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=float, default=10.0, help="seconds a pass may take (default 10)")
    args = parser.parse_args(argv)
    try:
        args.delays = [float(d) for d in args.delays.split(",")]
    except ValueError:
        parser.error(f"--delays: not a list of numbers: {args.delays!r}")
    if any(not 0 <= d <= 1 for d in args.delays) or args.names < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("delays within [0, 1] s; names, concurrency and rounds at least 1")
    return args


DNSDIST_CONF = """\
setLocal("{listen}:53")
newServer({{address="{upstream}", checkName="{origin}", checkType="SOA", checkInterval=60, mustResolve=false}})
{delay}
"""


@contextlib.contextmanager
def dnsdist(listen: str, upstream: tuple[str, int], delay: float) -> Iterator[None]:
    """dnsdist on ``listen``:53 in front of ``upstream``, holding every response ``delay`` s."""
    from benchmarks.servers import ORIGIN

    action = f"addResponseAction(AllRule(), DelayResponseAction({round(delay * 1000)}))" if delay else ""
    with tempfile.TemporaryDirectory(prefix="bench-dnsdist-") as folder:
        conf = Path(folder, "dnsdist.conf")
        conf.write_text(DNSDIST_CONF.format(listen=listen, upstream=f"{upstream[0]}:{upstream[1]}",
                                            origin=ORIGIN, delay=action))
        with Path(folder, "log").open("w") as log:
            process = subprocess.Popen(["dnsdist", "--supervised", "--disable-syslog", "-C", str(conf)],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            try:
                _wait_answering(listen, process, log.name)
                yield
            finally:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_answering(address: str, process: subprocess.Popen[bytes], log: str) -> None:
    import dns.exception
    import dns.message
    import dns.query

    from benchmarks.servers import ORIGIN

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dnsdist exited with {process.returncode}: {Path(log).read_text()[-2000:]}")
        try:
            dns.query.udp(dns.message.make_query(ORIGIN, "SOA"), address, timeout=0.5, port=53)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"dnsdist did not answer on {address}:53 within 10 s: {Path(log).read_text()[-2000:]}")


def point_resolv_conf_at_a_free_block() -> str:
    """Pick a free ``127.x.y.`` block and make this namespace's resolv.conf name its ``.53``."""
    from asyncresolve.testing.peers import port_is_free, random_loopback_block

    for _ in range(64):
        block = random_loopback_block()
        if port_is_free(f"{block}100", 53) and port_is_free(f"{block}53", 53):
            break
    with tempfile.NamedTemporaryFile("w", prefix="bench-latency-resolv-", suffix=".conf", delete=False) as conf:
        conf.write(f"nameserver {block}53\noptions timeout:2 attempts:2\n")
    subprocess.run(["mount", "--bind", conf.name, "/etc/resolv.conf"], check=True)
    os.unlink(conf.name)
    return block


async def measure(args: argparse.Namespace, block: str) -> None:
    from asyncresolve.testing.peers import NSD
    from benchmarks.contenders import aiodns_query_dns, getaddrinfo_threads, raw_pycares, resolver_cares
    from benchmarks.harness import rotated, run_pass
    from benchmarks.servers import ORIGIN, cold_names, expected_address, flat_zone

    contenders = [("raw pycares", raw_pycares), ("Resolver+cares", resolver_cares),
                  ("aiodns query_dns", aiodns_query_dns), ("getaddrinfo threads", getaddrinfo_threads)]
    front = f"{block}53"
    count = args.names * args.rounds * len(contenders)
    names = cold_names(count)
    with NSD({ORIGIN: flat_zone(count)}, address=f"{block}100", port=53) as nsd:
        print(f"NSD {nsd.address}:53 behind dnsdist {front}:53 (this namespace's /etc/resolv.conf names "
              f"dnsdist); {args.names:,} cold names per pass at concurrency {args.concurrency}; "
              f"default executor: {min(32, (os.cpu_count() or 1) + 4)} threads")
        print("\n| delay ms | contender | qps (median) | x getaddrinfo threads | success | p50 ms |")
        print("| ---: | --- | ---: | ---: | ---: | ---: |")
        position = 0
        for delay in args.delays:
            with dnsdist(front, (nsd.address, nsd.port), delay):
                results: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in contenders}
                for round_ in range(args.rounds):
                    for label, opener in rotated(contenders, round_):
                        batch = names[position:position + args.names]
                        position = (position + args.names) % count
                        async with opener((front, 53)) as lookup:
                            result = await run_pass(batch, expected_address, args.concurrency, lookup, args.limit)
                        results[label].append((result.qps, result.success, result.latency.quantile(0.5) * 1000))
            threads = statistics.median(q for q, _, _ in results["getaddrinfo threads"])
            for label, _ in contenders:
                qps = statistics.median(q for q, _, _ in results[label])
                success = min(s for _, s, _ in results[label])
                p50 = statistics.median(p for _, _, p in results[label])
                print(f"| {delay * 1000:g} | {label} | {qps:,.0f} | {qps / threads:.2f} | {success:.1%} | {p50:.1f} |",
                      flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.environ.get(_FLAG) == "1":
        asyncio.run(measure(args, point_resolv_conf_at_a_free_block()))
        return 0
    if os.geteuid() != 0:
        print("needs root: the lab server binds port 53 and the run uses a private mount namespace", file=sys.stderr)
        return 2
    # Until the child mounts the lab server's address, resolv.conf names 127.0.0.1: even a
    # lookup made too early stays on the machine.
    with tempfile.NamedTemporaryFile("w", prefix="bench-latency-first-", suffix=".conf", delete=False) as conf:
        conf.write("nameserver 127.0.0.1\n")
    inner = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
    try:
        return subprocess.call(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner, "bench-latency", conf.name,
             sys.executable, str(Path(__file__).resolve()), *(sys.argv[1:] if argv is None else argv)],
            env={**os.environ, _FLAG: "1"})
    finally:
        os.unlink(conf.name)


if __name__ == "__main__":
    sys.exit(main())
