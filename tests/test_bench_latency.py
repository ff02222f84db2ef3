"""benchmarks/bench_latency.py end to end: NSD behind dnsdist holding answers, four contenders."""

import re
import subprocess
import sys
from pathlib import Path

from asyncresolve.testing.peers import require_peer, require_root

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_latency.py"


def test_latency_benchmark_measures_every_contender_against_a_delayed_server():
    require_root("the benchmark binds port 53 and runs in a private mount namespace")
    require_peer("nsd", "dnsdist")
    run = subprocess.run([sys.executable, str(SCRIPT), "--names", "150", "--rounds", "1", "--delays", "0.02",
                          "--concurrency", "50"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = re.findall(r"^\| 20 \| ([^|]+) \| ([\d,]+) \| ([\d.]+) \| ([\d.]+)% \| ([\d.]+) \|$", run.stdout, re.M)
    assert {label.strip() for label, *_ in rows} == {
        "raw pycares", "Resolver+cares", "aiodns query_dns", "getaddrinfo threads"}, run.stdout
    assert all(float(success) == 100.0 for _, _, _, success, _ in rows), run.stdout
    by_label = {label.strip(): (float(ratio), float(p50)) for label, _, ratio, _, p50 in rows}
    assert by_label["getaddrinfo threads"][0] == 1.0
    # every answer was held 20 ms: a median latency below that would mean the delay was not applied
    assert all(p50 >= 19.0 for _, p50 in by_label.values()), run.stdout


def test_latency_benchmark_refuses_bad_arguments():
    run = subprocess.run([sys.executable, str(SCRIPT), "--delays", "fast"], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 2
    assert "--delays: not a list of numbers" in run.stderr
