"""Terminal output for ``rlmesh eval``: a live progress bar and a summary table.

Uses ``rich`` (the ``rlmesh[cli]`` extra) when it is installed; otherwise one plain line per
finished episode and a plain table.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from rlmesh.evaluation.hooks import Hooks
from rlmesh.evaluation.results import EpisodeResult, RunResult

__all__ = ["HEADERS", "ProgressHooks", "print_summary", "summary_rows"]

try:  # optional: the rlmesh[cli] extra
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table
except ImportError:  # pragma: no cover - exercised only without the extra
    Console = None  # type: ignore[assignment,misc]


class ProgressHooks(Hooks):
    """Shows episodes done, steps/s and the mean return so far while a run goes on."""

    def __init__(self, planned: int, enabled: bool = True) -> None:
        self.planned = planned
        self.enabled = enabled
        self.done = 0
        self.steps = 0
        self.total_reward = 0.0
        self.started = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressHooks:
        if self.enabled and Console is not None:
            console = Console(stderr=True)
            self._progress = Progress(
                TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} steps/s"),
                TextColumn("mean return {task.fields[mean]}"), TimeElapsedColumn(),
                console=console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task("eval", total=self.planned, rate="-",
                                                 mean="-")
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_episode_end(self, result: EpisodeResult) -> None:
        """Advance the bar."""
        self.done += 1
        self.steps += result.steps
        self.total_reward += result.reward
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = f"{self.steps / elapsed:,.0f}"
        mean = f"{self.total_reward / self.done:.2f}"
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, rate=rate, mean=mean)
        elif self.enabled:
            print(f"eval: {self.done}/{self.planned} episodes, {rate} steps/s, mean return "
                  f"{mean} (episode {result.index}: return {result.reward:.2f}, "
                  f"{result.steps} steps, {result.endpoint})", file=sys.stderr, flush=True)


def summary_rows(result: RunResult) -> list[list[str]]:
    """Per-endpoint rows, then a total row (the columns of :data:`HEADERS`)."""
    rows = []
    groups = result.by_endpoint()
    for endpoint, episodes in sorted(groups.items()):
        part = RunResult(episodes=episodes, planned=len(episodes))
        rows.append(_row(endpoint, part))
    rows.append(_row("all", result))
    return rows


def _row(name: str, result: RunResult) -> list[str]:
    success = result.success_rate
    terminated = sum(e.terminated for e in result.episodes)
    return [name, str(result.num_episodes), _num(result.mean_reward), _num(result.std_reward),
            _num(result.mean_steps), str(terminated), str(result.num_episodes - terminated),
            "-" if success is None else f"{success:.0%}"]


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


HEADERS = ["endpoint", "episodes", "mean return", "std", "mean length", "terminated",
           "truncated", "success"]


def print_summary(result: RunResult) -> None:
    """Print the summary table (and the run's events) to stdout."""
    rows = summary_rows(result)
    status = ("interrupted" if result.interrupted else
              "complete" if result.complete else "incomplete")
    title = (f"{result.num_episodes}/{result.planned} episodes, {result.total_steps} steps, "
             f"{status}")
    if Console is not None:
        table = Table(title=title)
        for header in HEADERS:
            table.add_column(header, justify="left" if header == "endpoint" else "right")
        for row in rows:
            table.add_row(*row, style="bold" if row[0] == "all" else None)
        console = Console()
        if not console.is_terminal:  # (a log or a pipe: no terminal width to respect)
            console = Console(width=max(console.width, 120))
        console.print(table)
        for event in result.events:
            console.print(f"[yellow]{event['kind']}[/yellow] {event.get('endpoint') or ''}: "
                          f"{event['message']}", highlight=False, markup=True)
        return
    print(title)
    widths = [max(len(r[i]) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
    for row in [HEADERS, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    for event in result.events:
        print(f"{event['kind']} {event.get('endpoint') or ''}: {event['message']}")
