"""``asyncresolve bulk --workers N``: names per second against the worker count, on NSD.

1. N distinct names (default 50,000) that NSD serves from one zone on a random 127.x address,
   port 53 when we are root (another free port otherwise).
2. ``raw``: pycares driven from asyncio in this one process (``bench_bulk.raw_pycares``), the
   single-core reference measured in the same run.
3. For workers = 1, 2, ... nproc, nproc + 1: ``asyncresolve bulk NAMES --workers W -o OUT``
   (JSON lines, no progress bar), in a subprocess; every output line is checked. Reported:
   names/s over the whole command (wall clock, interpreter and worker start-up included), the
   speed-up over one worker, the client's CPU seconds (parent and workers, from
   ``RUSAGE_CHILDREN``), and the per-core efficiency: names/s divided by (one worker's names/s
   times the cores the client could use, ``min(W, nproc)``).

Rounds are interleaved (raw, 1, 2, ... workers, then again) and the best of each is kept.
Writes ``benchmarks/results/<date>-scale.json`` and ``-scale.png`` (matplotlib).
Only loopback addresses are used.

Run: ``python benchmarks/bench_scale.py [--names 50000] [--rounds 2] [--concurrency 500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asyncresolve.testing.peers import NSD, free_port, random_loopback_address
from benchmarks.bench_bulk import ORIGIN, SCRIPT, check_output, raw_pycares, zone_text

RESULTS = Path(__file__).resolve().parent / "results"


def run_bulk(server: str, names_file: str, out: str, workers: int, concurrency: int) -> dict[str, float]:
    """One ``asyncresolve bulk --workers`` run: wall-clock names/s and the client's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen([SCRIPT, "bulk", names_file, "--nameserver", server, "-o", out, "-c", str(concurrency),
                                "--workers", str(workers), "--no-progress"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    parent_cpu = 0.0
    while process.poll() is None:  # the parent's own CPU, sampled until it exits (its workers are gone by then)
        parent_cpu = max(parent_cpu, own_cpu(process.pid))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers are waited for by the parent: counted
    if process.returncode != 0:
        stderr = process.stderr.read() if process.stderr else ""
        raise RuntimeError(f"asyncresolve bulk --workers {workers} exited with {process.returncode}: {stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"elapsed": elapsed, "cpu": cpu, "parent_cpu": parent_cpu}


def own_cpu(pid: int) -> float:
    """utime + stime of a running process (not its children), in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    cores = os.cpu_count() or 1
    counts = list(range(1, cores + 2))
    host = random_loopback_address()
    port = 53 if os.geteuid() == 0 else free_port(host)
    names = [f"h{i}.{ORIGIN}" for i in range(args.names)]
    best: dict[int, dict[str, float]] = {}
    raw: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        names_file = os.path.join(tmp, "names.txt")
        await asyncio.to_thread(Path(names_file).write_text, "\n".join(names) + "\n")
        out = os.path.join(tmp, "out.jsonl")
        async with NSD({ORIGIN: zone_text(args.names)}, address=host, port=port) as nsd:
            server = f"{nsd.address}:{nsd.port}"
            print(f"== {args.names} names, -c {args.concurrency}, {cores} cores, NSD at {server}", flush=True)
            await raw_pycares(server, names[:5000], args.concurrency)  # warm-up
            for round_ in range(args.rounds):
                raw.append(await raw_pycares(server, names, args.concurrency))
                line = [f"round {round_ + 1}: raw pycares {raw[-1]:7.0f}/s"]
                for workers in counts:
                    run = await asyncio.to_thread(run_bulk, server, names_file, out, workers, args.concurrency)
                    check_output(out, args.names)
                    rate = args.names / run["elapsed"]
                    if workers not in best or rate > best[workers]["rate"]:
                        best[workers] = {"rate": rate, **run}
                    line.append(f"w{workers} {rate:7.0f}/s")
                print("   ".join(line), flush=True)
    one = best[1]["rate"]
    rows = []
    for workers in counts:
        rate = best[workers]["rate"]
        rows.append({
            "workers": workers,
            "names_per_s": round(rate, 1),
            "speedup": round(rate / one, 3),
            "per_core_efficiency": round(rate / (one * min(workers, cores)), 3),
            "client_cpu_s": round(best[workers]["cpu"], 3),
            "names_per_client_cpu_s": round(args.names / best[workers]["cpu"], 1) if best[workers]["cpu"] else None,
            "parent_cpu_s": round(best[workers]["parent_cpu"], 3),
            "vs_raw_pycares": round(rate / max(raw), 3),
        })
    return {"date": datetime.date.today().isoformat(), "cores": cores, "names": args.names,
            "concurrency": args.concurrency, "rounds": args.rounds, "python": platform.python_version(),
            "raw_pycares_names_per_s": round(max(raw), 1), "rows": rows}


def print_table(report: dict[str, object]) -> None:
    print(f"raw pycares, one process: {report['raw_pycares_names_per_s']:.0f} names/s")
    print("| workers | names/s | speed-up | per-core efficiency | client CPU s | names per client CPU s "
          "| parent CPU s | /raw |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in report["rows"]:  # type: ignore[attr-defined]
        print(f"| {row['workers']} | {row['names_per_s']:.0f} | {row['speedup']:.2f} | "
              f"{row['per_core_efficiency']:.2f} | {row['client_cpu_s']:.2f} | {row['names_per_client_cpu_s']:.0f} | "
              f"{row['parent_cpu_s']:.2f} | {row['vs_raw_pycares']:.2f} |")


def plot(report: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    workers = [r["workers"] for r in rows]  # type: ignore[attr-defined]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(workers, [r["names_per_s"] for r in rows], "o-", label="asyncresolve bulk --workers N")  # type: ignore[attr-defined]
    left.axhline(report["raw_pycares_names_per_s"], color="grey", linestyle="--", label="raw pycares, 1 process")
    left.axvline(report["cores"], color="red", linestyle=":", label=f"{report['cores']} cores (NSD shares them)")
    left.set_xlabel("worker processes")
    left.set_ylabel("names per second")
    left.set_xticks(workers)
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)
    left.set_title(f"{report['names']} names on NSD")
    right.bar(workers, [r["per_core_efficiency"] for r in rows])  # type: ignore[attr-defined]
    right.set_xlabel("worker processes")
    right.set_ylabel("names/s / (1-worker names/s * cores used)")
    right.set_xticks(workers)
    right.set_ylim(0, 1.2)
    right.set_title("per-core efficiency")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--names", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    print_table(report)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"{report['date']}-scale"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, stem.with_suffix(".png"))
    print(f"wrote {stem}.json and {stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
