"""The run's outputs: the printed table (Markdown, as the README shows it), the JSON, the PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .contenders import BASELINE

CARES_RAW_SETTINGS = "Resolver+cares, raw's settings"


def paired_ratio(by_label: dict[str, Any], label: str, other: str, level: int) -> float:
    """Median over rounds of ``label``'s qps over ``other``'s in the same round.

    Rounds run every contender back to back, so a pair shares the machine's state of the
    moment: on a loaded machine this is steadier than a ratio of medians.
    """
    ours = by_label[label][str(level)]["qps_rounds"]
    theirs = by_label[other][str(level)]["qps_rounds"]
    ratios = sorted(a / b for a, b in zip(ours, theirs, strict=False) if b)
    if not ratios:
        return 0.0
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


def cold_table(result: dict[str, Any], level: int) -> str:
    """Markdown table of scenario (1) at one concurrency, for every loop that ran it."""
    rows = ["| loop | contender | qps (median) | spread (min-max) | x raw pycares (paired) | success | p50 ms "
            "| p99 ms | client CPU us/name |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for loop_name, scenarios in result["loops"].items():
        cold = scenarios.get("cold")
        if not cold or str(level) not in cold["contenders"][BASELINE]:
            continue
        base = cold["contenders"][BASELINE][str(level)]["qps_median"]
        for label, by_level in cold["contenders"].items():
            s = by_level[str(level)]
            cut = f" (cut: {s['cut']:,} not reached)" if s["cut"] else ""
            rows.append(f"| {loop_name} | {label} | {s['qps_median']:,.0f} | {s['qps_min']:,.0f}-{s['qps_max']:,.0f} "
                        f"| {paired_ratio(cold['contenders'], label, BASELINE, level):.2f} "
                        f"| {s['success']:.1%}{cut} | {s['p50_ms']:.2f} "
                        f"| {s['p99_ms']:.2f} | {_cpu(s)} |")
        perf = cold.get("dnsperf", {}).get(str(level))
        if perf:
            rows.append(f"| {loop_name} | dnsperf (C, the server's ceiling) | {perf['qps_median']:,.0f} "
                        f"| {perf['qps_min']:,.0f}-{perf['qps_max']:,.0f} | {perf['qps_median'] / base:.2f} "
                        f"| {perf['success']:.1%} | | | |")
    return "\n".join(rows)


def _cpu(summary: dict[str, Any]) -> str:
    """The median client CPU per name (results of runs before it was measured have none)."""
    cpu = summary.get("cpu_us_per_name_median")
    return f"{cpu:.1f}" if cpu else ""


def summary_lines(result: dict[str, Any], level: int) -> list[str]:
    """The issue's targets, each with its measured ratio."""
    lines = []
    for loop_name, scenarios in result["loops"].items():
        cold = scenarios.get("cold")
        if cold and str(level) in cold["contenders"].get(BASELINE, {}):
            contenders = cold["contenders"]

            def ratio(label: str, contenders: dict[str, Any] = contenders, mine: str = "Resolver+cares") -> str:
                if label not in contenders or mine not in contenders:
                    return "n/a"
                return f"{paired_ratio(contenders, mine, label, level):.2f}"

            lines.append(f"[{loop_name}] c={level}: Resolver+cares / raw pycares = {ratio(BASELINE)} (target >= 0.95); "
                         f"/ aiodns = {ratio('aiodns query_dns')} (> 1); / dnspython = {ratio('dnspython async')} "
                         f"(>= 5); / getaddrinfo threads = {ratio('getaddrinfo threads')} (>= 2); "
                         f"CaresBackend alone / raw = {ratio(BASELINE, mine='CaresBackend alone')}; "
                         f"with raw's settings (one socket, no 0x20) / raw = "
                         f"{ratio(BASELINE, mine=CARES_RAW_SETTINGS)} "
                         "(ratios: median of per-round pairs)")
            if "Resolver+native" in contenders:
                cpu = {label: _cpu(contenders[label][str(level)]) for label in
                       ("Resolver+native", "NativeBackend alone", BASELINE) if label in contenders}
                lines.append(f"[{loop_name}] c={level}: Resolver+native / raw pycares = "
                             f"{ratio(BASELINE, mine='Resolver+native')} (target >= 1.5); NativeBackend alone / raw = "
                             f"{ratio(BASELINE, mine='NativeBackend alone')}; client CPU us/name: "
                             + ", ".join(f"{label} {value}" for label, value in cpu.items()))
        cache = scenarios.get("cache")
        if cache:
            hit = cache["contenders"]["Resolver cache hit"]
            lines.append(f"[{loop_name}] cache hits: {hit['1']['rate_median']:,.0f}/s sequential = "
                         f"{hit['1']['vs_floor']:.2f} x the dict floor (target >= 0.3); at concurrency 1,000 "
                         f"{hit['1000']['vs_floor']:.2f} x")
        coal = scenarios.get("coalesce")
        if coal:
            lines.append(f"[{loop_name}] coalescing: {coal['waiters']:,} lookups -> max {coal['upstream_queries_max']} "
                         f"upstream quer{'y' if coal['upstream_queries_max'] == 1 else 'ies'}; "
                         f"{coal['total_s_median'] * 1e3:.1f} ms against floor {coal['floor_s_median'] * 1e3:.1f} ms "
                         f"+ one lookup {coal['one_lookup_s_median'] * 1e3:.1f} ms = "
                         f"{coal['ratio_to_floor_plus_one']:.2f} x (target <= 2)" + (
                             f"; {coal['ratio_to_done_floor_plus_one']:.2f} x the done-future floor "
                             f"{coal['done_floor_s_median'] * 1e3:.1f} ms" if "done_floor_s_median" in coal else ""))
    iterative = result.get("iterative")
    if iterative and "loops" in iterative:
        for loop_name, by_label in iterative["loops"].items():
            it = by_label.get("iterative", {}).get("qps_median", 0.0)
            pc = by_label.get("pycares->unbound", {}).get("qps_median", 0.0)
            dp = by_label.get("dnspython->unbound", {}).get("qps_median", 0.0)
            lines.append(f"[{loop_name}] iterative: {it:,.0f} qps = {it / pc if pc else 0:.2f} x pycares->cold "
                         f"unbound, {it / dp if dp else 0:.2f} x dnspython->cold unbound")
    return lines


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")


def plots(result: dict[str, Any], directory: Path, stem: str) -> list[Path]:
    """throughput vs concurrency, latency distributions (CDF), cache-hit rates: one PNG each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    # one colour per contender: the default cycle has ten, and the cold scenario has thirteen
    colours = plt.get_cmap("tab20").colors
    asyncio_cold = result["loops"].get("asyncio", {}).get("cold")
    if asyncio_cold:
        levels = asyncio_cold["levels"]
        fig, ax = plt.subplots(figsize=(11, 5.5))
        for index, (label, by_level) in enumerate(asyncio_cold["contenders"].items()):
            ys = [by_level[str(lv)]["qps_median"] for lv in levels]
            lo = [by_level[str(lv)]["qps_min"] for lv in levels]
            hi = [by_level[str(lv)]["qps_max"] for lv in levels]
            colour = colours[index % len(colours)]
            ax.plot(levels, ys, marker="o", label=label, color=colour,
                    linewidth=2.5 if "Resolver+cares" in label else 1.3)
            ax.fill_between(levels, lo, hi, color=colour, alpha=0.12)
        if "dnsperf" in asyncio_cold:
            perf = [asyncio_cold["dnsperf"].get(str(lv), {}).get("qps_median", float("nan")) for lv in levels]
            ax.plot(levels, perf, "k--", label="dnsperf (C ceiling)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(levels, [str(lv) for lv in levels])
        ax.set_xlabel("concurrency (lookups in flight)")
        ax.set_ylabel("queries per second (median of rounds; band: min-max)")
        ax.set_title(f"Cold A lookups of {asyncio_cold['names']:,} distinct names (asyncio)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = directory / f"{stem}-throughput.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

        level = result["headline_concurrency"]
        if str(level) in next(iter(asyncio_cold["contenders"].values())):
            fig, ax = plt.subplots(figsize=(9, 5.5))
            for index, (label, by_level) in enumerate(asyncio_cold["contenders"].items()):
                s = by_level[str(level)]
                buckets = s["latency_buckets"]
                if not buckets:
                    continue
                total = s["lookups"]
                xs = [b * 1e3 for b, _ in buckets]
                ys = [c / total for _, c in buckets]
                ax.step(xs, ys, where="post", label=f"{label} (p99 {s['p99_ms']:.1f} ms)",
                        color=colours[index % len(colours)])
            ax.set_xscale("log")
            ax.set_xlabel("latency of one lookup (ms)")
            ax.set_ylabel("fraction of lookups at most this slow")
            ax.set_title(f"Latency distribution, cold lookups at concurrency {level} (asyncio)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8, loc="lower right")
            fig.tight_layout()
            path = directory / f"{stem}-latency.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)

    caches = {loop: s["cache"] for loop, s in result["loops"].items() if s.get("cache")}
    if caches:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        labels = list(next(iter(caches.values()))["contenders"])
        bars = [(loop, conc) for loop in caches for conc in ("1", "1000")]
        width = 0.8 / len(bars)
        for i, (loop, conc) in enumerate(bars):
            rates = [caches[loop]["contenders"][label][conc]["rate_median"] / 1e6 for label in labels]
            xs = [j + i * width for j in range(len(labels))]
            ax.bar(xs, rates, width, label=f"{loop}, {'sequential' if conc == '1' else 'concurrency 1,000'}")
        ax.set_xticks([j + width * (len(bars) - 1) / 2 for j in range(len(labels))], labels)
        ax.set_yscale("log")
        ax.set_ylabel("cache hits per second (millions, log scale)")
        ax.set_title("Cache hits: await resolve() of a cached name, against a bare dict behind an await")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = directory / f"{stem}-cache-hits.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def other_tables(result: dict[str, Any]) -> str:
    """Markdown tables of scenarios (2)-(6), as the README shows them."""
    out = []
    rows = ["| loop | contender | hits/s sequential | x dict floor | hits/s at concurrency 1,000 | x dict floor |",
            "| --- | --- | ---: | ---: | ---: | ---: |"]
    for loop_name, scenarios in result["loops"].items():
        for label, by in scenarios.get("cache", {}).get("contenders", {}).items():
            rows.append(f"| {loop_name} | {label} | {by['1']['rate_median']:,.0f} | {by['1']['vs_floor']:.2f} "
                        f"| {by['1000']['rate_median']:,.0f} | {by['1000']['vs_floor']:.2f} |")
    if len(rows) > 2:
        out.append("\n".join(rows))
    rows = ["| loop | lookups | upstream queries | total ms | shared-future floor ms | one lookup ms "
            "| total / (floor + one) | done-future floor ms | total / (done floor + one) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for loop_name, scenarios in result["loops"].items():
        coal = scenarios.get("coalesce")
        if coal:
            rows.append(f"| {loop_name} | {coal['waiters']:,} | {coal['upstream_queries_max']} "
                        f"| {coal['total_s_median'] * 1e3:.1f} | {coal['floor_s_median'] * 1e3:.1f} "
                        f"| {coal['one_lookup_s_median'] * 1e3:.1f} | {coal['ratio_to_floor_plus_one']:.2f} "
                        + (f"| {coal['done_floor_s_median'] * 1e3:.1f} | {coal['ratio_to_done_floor_plus_one']:.2f} |"
                           if "done_floor_s_median" in coal else "| - | - |"))
    if len(rows) > 2:
        out.append("\n".join(rows))
    iterative = result.get("iterative", {})
    if "loops" in iterative:
        rows = ["| loop | contender (cold, from the root) | qps (median) | spread | success |",
                "| --- | --- | ---: | ---: | ---: |"]
        for loop_name, by_label in iterative["loops"].items():
            for label, s in by_label.items():
                rows.append(f"| {loop_name} | {label} | {s['qps_median']:,.0f} "
                            f"| {s['qps_min']:,.0f}-{s['qps_max']:,.0f} | {s['success']:.1%} |")
        out.append("\n".join(rows))
    for loop_name, scenarios in result["loops"].items():
        memory = scenarios.get("memory")
        if memory:
            line = (f"Memory ({loop_name}): {memory['bytes_per_entry']:,.0f} bytes per cached answer "
                    f"({memory['entries']:,} entries through `Resolver` + `CaresBackend`); peak of that cold run "
                    f"{memory['peak_mib_cold_run']:.1f} MiB above its start")
            if "peak_mib_bulk" in memory:
                line += f"; `resolve_many` peak {memory['peak_mib_bulk']:.1f} MiB"
            out.append(line + ".")
        bulk = scenarios.get("bulk")
        cli = (bulk or {}).get("cli", {})
        if "qps" in cli:
            out.append(f"Bulk CLI ({loop_name}): `python -m asyncresolve bulk` over {cli['names']:,} names: "
                       f"{cli['qps']:,.0f} names/s ({cli['elapsed_s']:.1f} s, exit {cli['exit']}), NOERROR "
                       f"{cli['success']:.1%}, peak RSS {cli['peak_rss_mib']:.0f} MiB.")
        elif "skipped" in cli:
            out.append(f"Bulk CLI ({loop_name}): {cli['skipped']}.")
        if bulk and "skipped" in bulk:
            out.append(f"Bulk ({loop_name}): {bulk['skipped']}.")
        elif bulk:
            out.append(f"Bulk ({loop_name}): `resolve_many` over {bulk['names']:,} names: "
                       f"{bulk['qps_median']:,.0f} names/s (spread {bulk['qps_min']:,.0f}-{bulk['qps_max']:,.0f}), "
                       f"success {bulk['success']:.1%}.")
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report RESULT.json [--plots]``: the tables (and plots) of a finished run."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    parser.add_argument("result", type=Path)
    parser.add_argument("--plots", action="store_true", help="redraw the PNGs beside the JSON")
    args = parser.parse_args(argv)
    result = json.loads(args.result.read_text())
    level = result["headline_concurrency"]
    print(cold_table(result, level), other_tables(result), "\n".join(summary_lines(result, level)), sep="\n\n")
    if args.plots:
        for path in plots(result, args.result.parent, args.result.stem):
            print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
