"""The benchmark's own servers, on loopback only: a flat NSD zone, and dnsperf as the C ceiling."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ORIGIN = "bench.test."


def address_of(i: int) -> str:
    return f"198.{18 + ((i >> 16) & 1)}.{(i >> 8) & 255}.{i & 255}"  # RFC 2544's benchmarking range, as data


def flat_zone(count: int) -> str:
    """``h0 .. h{count-1}`` under ``bench.test.``, each with its own address."""
    lines = ["$TTL 300", "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 60", "@ 3600 IN NS ns1",
             "ns1 IN A 127.0.0.1"]
    lines += [f"h{i} IN A {address_of(i)}" for i in range(count)]
    return "\n".join(lines) + "\n"


def cold_names(count: int) -> list[str]:
    return [f"h{i}.{ORIGIN}" for i in range(count)]


def expected_address(name: str) -> str:
    return address_of(int(name[1:name.index(".")]))


def dnsperf_available() -> bool:
    return shutil.which("dnsperf") is not None


def dnsperf(server: tuple[str, int], names: list[str], concurrency: int, limit: float) -> dict[str, float]:
    """dnsperf (C) through ``names`` once, ``concurrency`` queries outstanding; its qps and loss."""
    with tempfile.NamedTemporaryFile("w", suffix=".names", delete=False) as handle:
        handle.write("".join(f"{name} A\n" for name in names))
        path = handle.name
    try:
        run = subprocess.run(
            ["dnsperf", "-s", server[0], "-p", str(server[1]), "-d", path, "-n", "1", "-q", str(concurrency),
             "-l", str(max(1, int(limit))), "-t", "2", "-c", "1", "-T", "1"],
            capture_output=True, text=True, timeout=limit + 30, check=False,
        )
    finally:
        Path(path).unlink(missing_ok=True)
    out = run.stdout

    def grab(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else 0.0

    sent = grab(r"Queries sent:\s+(\d+)")
    completed = grab(r"Queries completed:\s+(\d+)")
    return {
        "qps": grab(r"Queries per second:\s+([\d.]+)"),
        "sent": sent,
        "completed": completed,
        "success": completed / sent if sent else 0.0,
        "avg_latency_ms": grab(r"Average Latency \(s\):\s+([\d.]+)") * 1e3,
    }
