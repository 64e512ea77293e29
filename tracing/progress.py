"""Live progress of long work (answering a split, training steps, LLM calls), reported from below.

Evaluation, training and the LLM client call :func:`report` as they go; whoever started the run
(the CLI) installs a :class:`ProgressReporter` with :func:`reporting` and decides how it looks.
With none installed a report costs one attribute read, so library code and tests need nothing.

The reporter is process-wide rather than a context variable: LangGraph runs nodes on worker
threads and the LLM client on its own event loop, and a report must reach the console from all
of them. A training subprocess (``accelerate launch``) has no console: it reports through
:class:`JsonLinesReporter` into a file the parent forwards with :func:`forward_new_lines`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field, ValidationError

log = logging.getLogger(__name__)
Stat = int | float | str


class ProgressUpdate(BaseModel):
    """How far one piece of work is: ``done`` of ``total`` (None: open-ended, e.g. LLM calls)."""

    task: str = Field(description="what is counted, e.g. 'answers', 'sft steps', 'llm calls'")
    done: int
    total: int | None = None
    stats: dict[str, Stat] = Field(default_factory=dict, description="numbers shown beside the count")

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total


class ProgressReporter(Protocol):
    def update(self, update: ProgressUpdate) -> None: ...


_lock = threading.Lock()
_reporter: ProgressReporter | None = None


@contextmanager
def reporting(reporter: ProgressReporter | None) -> Iterator[None]:
    """Send every :func:`report` inside the block to ``reporter`` (None: nowhere)."""
    global _reporter
    with _lock:
        previous, _reporter = _reporter, reporter
    try:
        yield
    finally:
        with _lock:
            _reporter = previous


def report(task: str, done: int, total: int | None = None, **stats: Stat) -> None:
    """Tell the installed reporter how far ``task`` is; nothing when none is installed. A
    reporter's error never stops the work it reports on."""
    reporter = _reporter
    if reporter is None:
        return
    try:
        reporter.update(ProgressUpdate(task=task, done=done, total=total, stats=stats))
    except Exception:  # progress is cosmetic: the work goes on
        log.debug("progress reporter failed", exc_info=True)


class JsonLinesReporter:
    """Appends each update as a JSON line to ``path`` (a subprocess's progress, for its parent)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def update(self, update: ProgressUpdate) -> None:
        with open(self.path, "a") as out:
            out.write(update.model_dump_json() + "\n")


def forward_new_lines(path: Path, offset: int) -> int:
    """Report the complete lines ``path`` gained after byte ``offset``; returns the new offset."""
    try:
        with open(path, "rb") as src:
            src.seek(offset)
            chunk = src.read()
    except FileNotFoundError:
        return offset
    complete = chunk[: chunk.rfind(b"\n") + 1]
    for line in complete.splitlines():
        try:
            update = ProgressUpdate.model_validate_json(line)
        except ValidationError:
            continue
        report(update.task, update.done, update.total, **update.stats)
    return offset + len(complete)
