"""What a bulk run shows while it works: a rich progress bar on a terminal, a final summary
otherwise, and ``--stats-file`` JSON lines for dashboards.

rich is imported only here, and only when a terminal is there to draw on. The display is
refreshed from the event loop (no refresh thread contending for the GIL).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import IO, Any

from .runner import BulkRun

STATUS_ORDER = ("NOERROR", "NXDOMAIN", "NODATA", "SERVFAIL", "REFUSED", "TIMEOUT", "INVALID")


def format_counts(counts: dict[str, int]) -> str:
    ordered = [s for s in STATUS_ORDER if counts.get(s)] + sorted(s for s in counts if s not in STATUS_ORDER)
    return "  ".join(f"{status} {counts[status]}" for status in ordered) or "-"


def snapshot(run: BulkRun, started: float, total: int | None, cpu_started: float = 0.0) -> dict[str, Any]:
    elapsed = time.monotonic() - started
    done = run.done + run.skipped
    return {
        "time": round(time.time(), 3),
        "elapsed": round(elapsed, 3),
        "done": done,
        "total": total,
        "resolved": run.done,
        "skipped": run.skipped,
        "rate": round(run.done / elapsed, 1) if elapsed > 0 else 0.0,
        "cpu": round(time.process_time() - cpu_started, 3),
        "in_flight": run.in_flight,
        "sent": run.sent,
        "wildcards": run.wildcard_hits,
        "counts": dict(run.counts),
    }


class Progress:
    """Drives the bar (when ``bar``) and the stats file while ``run`` runs; ``total`` may come later."""

    def __init__(self, run: BulkRun, *, bar: bool, stream: IO[str], stats_file: str | None = None,
                 stats_interval: float = 5.0, refresh: float = 0.2) -> None:
        self.run = run
        self.stream = stream
        self.total: int | None = None
        self.started = time.monotonic()
        self.cpu_started = time.process_time()
        self.stats_file = stats_file
        self.stats_interval = stats_interval
        self.refresh = refresh
        self._bar = bar
        self._rich: Any = None
        self._task_id: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._bar:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            console = Console(file=self.stream, force_terminal=True)
            self._rich = RichProgress(
                TextColumn("[bold]bulk"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                # The live fields are plain text: no markup to parse at each redraw.
                TextColumn("{task.fields[rate]:>8.0f}/s", markup=False), TimeElapsedColumn(),
                TextColumn("eta", markup=False), TimeRemainingColumn(),
                TextColumn("{task.fields[counts]}", markup=False),
                console=console, auto_refresh=False, transient=False,
            )
            self._task_id = self._rich.add_task("bulk", total=self.total, rate=0.0, counts="")
            self._rich.start()
            self._tasks.append(loop.create_task(self._redraw()))
        if self.stats_file:
            self._tasks.append(loop.create_task(self._write_stats()))

    def set_total(self, total: int) -> None:
        self.total = total
        if self._rich is not None:
            self._rich.update(self._task_id, total=total)

    def warn(self, message: str) -> None:
        if self._rich is not None:
            self._rich.console.print(f"[yellow]warning:[/] {message}")
        else:
            print(f"asyncresolve bulk: warning: {message}", file=self.stream, flush=True)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._rich is not None:
            self._draw()
            self._rich.stop()
        if self.stats_file:
            self._append_stats()

    # -- drawing ------------------------------------------------------------------
    def _draw(self) -> None:
        data = snapshot(self.run, self.started, self.total, self.cpu_started)
        self._rich.update(self._task_id, completed=data["done"], rate=data["rate"],
                          counts=format_counts(data["counts"]))
        self._rich.refresh()

    async def _redraw(self) -> None:
        while True:
            self._draw()
            await asyncio.sleep(self.refresh)

    def _append_stats(self) -> None:
        assert self.stats_file is not None
        with open(self.stats_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(snapshot(self.run, self.started, self.total, self.cpu_started)) + "\n")

    async def _write_stats(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            self._append_stats()

    def summary(self, output: str | None) -> str:
        data = snapshot(self.run, self.started, self.total, self.cpu_started)
        where = f"; output {output}" if output else ""
        skipped = f" ({data['skipped']} skipped: already in the output)" if data["skipped"] else ""
        wild = f"; {data['wildcards']} wildcard answers" if self.run.wildcards is not None else ""
        return (f"asyncresolve bulk: {data['resolved']} results{skipped} in {data['elapsed']:.1f} s "
                f"({data['rate']:.0f}/s): {format_counts(data['counts'])}{wild}{where}")
