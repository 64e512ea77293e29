"""Live progress on stderr: a line as each node starts and ends, and between them the counts the
lower layers report (tracing/progress.py): answers, generated tasks, LLM calls, training steps.

On a terminal the counts are rich progress bars that vanish when their node ends; when stderr is
not a terminal (CI, a log file) each count is a plain line, printed when it starts, when it is
complete, and at most every ``interval`` seconds in between, so a log shows a slow node moving
without a line per step. The last count a node reached is always printed before its end line.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from teachloop.cli import render
from teachloop.tracing.progress import ProgressUpdate

#: Seconds between two plain lines of the same count.
PLAIN_INTERVAL_S = 10.0


class ConsoleProgress:
    """The CLI's progress reporter: ``node`` is the loop's per-node callback, ``update`` receives
    the lower layers' counts (installed with ``tracing.progress.reporting``)."""

    def __init__(self, console: Console, interval: float = PLAIN_INTERVAL_S) -> None:
        self.console = console
        self.interval = interval
        self.live = console.is_terminal
        self._lock = threading.Lock()  # counts arrive from worker threads and the LLM event loop
        self._where = ""
        self._printed_at: dict[str, float] = {}
        self._unprinted: dict[str, ProgressUpdate] = {}
        self._done: dict[str, int] = {}
        self._bars: Progress | None = None
        self._bar_ids: dict[str, TaskID] = {}

    def node(self, node: str, round_: int, phase: str, seconds: float | None) -> None:
        with self._lock:
            if phase == "start":
                self._where = render.progress_prefix(node, round_)
            else:
                self._close_counts()
            render.print_progress(self.console, node, round_, phase, seconds)

    def update(self, update: ProgressUpdate) -> None:
        with self._lock:
            if self.live:
                self._show_bar(update)
                return
            now = time.monotonic()
            last = self._printed_at.get(update.task)
            restarted = update.done < self._done.get(update.task, 0)  # the node counts again
            self._done[update.task] = update.done
            if last is None or restarted or update.finished or now - last >= self.interval:
                self._print_line(update, now)
            else:
                self._unprinted[update.task] = update

    def _print_line(self, update: ProgressUpdate, now: float) -> None:
        self.console.print(f"{self._where} {render.progress_count(update)}", highlight=False, markup=False)
        self._printed_at[update.task] = now
        self._unprinted.pop(update.task, None)

    def _show_bar(self, update: ProgressUpdate) -> None:
        if self._bars is None:
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"),
                console=self.console,
                transient=True,
            )
            self._bars.start()
        stats = render.progress_stats(update)
        if update.task not in self._bar_ids:
            self._bar_ids[update.task] = self._bars.add_task(
                f"{self._where} {update.task}", total=update.total, stats=stats
            )
        self._bars.update(self._bar_ids[update.task], completed=update.done, total=update.total, stats=stats)

    def _close_counts(self) -> None:
        """At a node's end: the counts it left unprinted, then a clean slate for the next node."""
        for update in list(self._unprinted.values()):
            self._print_line(update, time.monotonic())
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
        self._bar_ids.clear()
        self._printed_at.clear()
        self._done.clear()
