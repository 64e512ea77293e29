"""Spans: what every node, agent and tool did in a run, in the run's ``traces.sqlite``.

A span has a kind (node, agent, llm, tool), a name, a parent, start and end times, small
inputs/outputs (truncated), token counts and an error if it failed. Spans nest through a
context variable, so a tool call inside a node is that node's child without passing ids around.
Each span is one row written when it ends; a span cut off by a crash is simply absent, and the
re-run of its node after resume gets a span of its own.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

SpanKind = Literal["run", "node", "agent", "llm", "tool"]
MAX_FIELD_CHARS = 4000

_current: ContextVar[str | None] = ContextVar("teachloop_span", default=None)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    id TEXT PRIMARY KEY,
    parent_id TEXT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    round INTEGER,
    start REAL NOT NULL,
    end REAL NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    inputs TEXT,
    outputs TEXT,
    attrs TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER
);
CREATE INDEX IF NOT EXISTS spans_parent ON spans(parent_id);
CREATE INDEX IF NOT EXISTS spans_round ON spans(round);
"""


def _clip(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if len(text) > MAX_FIELD_CHARS:
        text = text[:MAX_FIELD_CHARS] + f"... [{len(text) - MAX_FIELD_CHARS} more chars]"
    return text


class Span(BaseModel):
    id: str
    parent_id: str | None
    kind: str
    name: str
    round: int | None
    start: float
    end: float
    status: str
    error: str | None = None
    inputs: str | None = None
    outputs: str | None = None
    attrs: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start


class SpanHandle:
    """What a running span's body may add: outputs, attributes and token counts."""

    def __init__(self, span_id: str) -> None:
        self.id = span_id
        self.outputs: Any = None
        self.attrs: dict[str, Any] = {}
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None


class Tracer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a span survives the process being killed; no fsync per span (an LLM
        # client writes one per request, and an fsync each stalled concurrent requests).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def span(
        self, kind: SpanKind, name: str, round: int | None = None, inputs: Any = None, **attrs: Any
    ) -> Iterator[SpanHandle]:
        handle = SpanHandle(uuid.uuid4().hex)
        handle.attrs.update(attrs)
        parent = _current.get()
        token = _current.set(handle.id)
        start = time.time()
        status, error = "ok", None
        try:
            yield handle
        except BaseException as err:
            status, error = "error", f"{type(err).__name__}: {err}"
            raise
        finally:
            _current.reset(token)
            self._write(
                Span(
                    id=handle.id,
                    parent_id=parent,
                    kind=kind,
                    name=name,
                    round=round,
                    start=start,
                    end=time.time(),
                    status=status,
                    error=_clip(error),
                    inputs=_clip(inputs),
                    outputs=_clip(handle.outputs),
                    attrs=_clip(handle.attrs) if handle.attrs else None,
                    prompt_tokens=handle.prompt_tokens,
                    completion_tokens=handle.completion_tokens,
                )
            )

    def _write(self, span: Span) -> None:
        row = span.model_dump()
        with self._lock:
            self._db.execute(
                f"INSERT INTO spans ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )


def read_spans(path: Path, round_: int | None = None) -> list[Span]:
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        where, args = ("WHERE round = ?", (round_,)) if round_ is not None else ("", ())
        return [Span(**dict(r)) for r in db.execute(f"SELECT * FROM spans {where} ORDER BY start", args)]
    finally:
        db.close()
