"""Spans: what every node, agent and tool did in a run, in the run's ``traces.sqlite``.

A span has a kind (run, node, agent, llm, tool), a name, a parent, start and end times, small
inputs/outputs, token counts and an error if it failed. Spans nest through a context variable,
so a tool call inside a node is that node's child without passing ids around; a span opened
without a round inherits its parent's. Each span is one row written when it ends; a span cut
off by a crash is simply absent, and the re-run of its node after resume gets a span of its own.

Inputs, outputs and attributes are stored as JSON that stays valid however big the value was:
long strings are clipped and long lists keep their first items plus a count of the rest. Every
value passes through ``redact`` first, so no API key or password reaches the file (or a sink).
A tracer can also hand each finished span to sinks (an OpenTelemetry exporter, see
``core/otel.py``); ``Tracer(None)`` stores nothing and is what tracing costs nothing with.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from teachloop.foundation.redact import REDACTED, is_secret_item, redact_text

log = logging.getLogger(__name__)

SpanKind = Literal["run", "node", "agent", "llm", "tool"]
#: Limits that keep a span row small: characters per string, items per list, keys per mapping,
#: nesting depth, and characters of a whole field. A value whose JSON is still longer than a
#: field's limit is shrunk again with tighter limits; cutting the JSON itself is the last resort.
MAX_STRING_CHARS = 2000
MAX_ITEMS = 25
MAX_KEYS = 60
MAX_DEPTH = 6
MAX_FIELD_CHARS = 16000
_TIGHTER = ((500, 10), (120, 5), (40, 3))


@dataclass(frozen=True)
class _Active:
    handle: SpanHandle
    round: int | None

    @property
    def id(self) -> str:
        return self.handle.id


_current: ContextVar[_Active | None] = ContextVar("teachloop_span", default=None)

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


def _clip_text(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more chars]"


def _shrink(value: Any, chars: int = MAX_STRING_CHARS, items: int = MAX_ITEMS, depth: int = 0) -> Any:
    """A JSON-safe, redacted copy of ``value`` with at most ``chars`` per string, ``items`` per list."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        # Redact before clipping, so a secret cut at the limit is still recognised whole.
        return _clip_text(redact_text(value[: chars + 256]), chars)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if depth >= MAX_DEPTH:
        return _shrink(str(value), chars, items, depth)
    if isinstance(value, Mapping):
        pairs = list(value.items())
        out = {
            str(k): REDACTED if is_secret_item(k, v) else _shrink(v, chars, items, depth + 1)
            for k, v in pairs[:MAX_KEYS]
        }
        if len(pairs) > MAX_KEYS:
            out["..."] = f"{len(pairs) - MAX_KEYS} more keys"
        return out
    if isinstance(value, Sequence | set | frozenset):
        seq = list(value)
        kept = [_shrink(v, chars, items, depth + 1) for v in seq[:items]]
        if len(seq) > items:
            kept.append(f"... {len(seq) - items} more items")
        return kept
    return _shrink(str(value), chars, items, depth)


def encode(value: Any) -> str | None:
    """How a span field is stored: bounded, redacted JSON (None stays None)."""
    if value is None:
        return None
    text = json.dumps(_shrink(value), ensure_ascii=False, default=str)
    for chars, items in _TIGHTER:
        if len(text) <= MAX_FIELD_CHARS:
            return text
        text = json.dumps(_shrink(value, chars, items), ensure_ascii=False, default=str)
    return _clip_text(text, MAX_FIELD_CHARS)


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

    def decoded(self, field: Literal["inputs", "outputs", "attrs"]) -> Any:
        """A stored field as data (the raw text if it was cut by ``MAX_FIELD_CHARS``)."""
        text = getattr(self, field)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text


class SpanHandle:
    """What a running span's body may add: outputs, attributes and token counts."""

    def __init__(self, span_id: str) -> None:
        self.id = span_id
        self.outputs: Any = None
        self.attrs: dict[str, Any] = {}
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def add_tokens(self, prompt: int, completion: int) -> None:
        self.prompt_tokens = (self.prompt_tokens or 0) + prompt
        self.completion_tokens = (self.completion_tokens or 0) + completion


class SpanSink(Protocol):
    """Somewhere else finished spans go (an OpenTelemetry exporter); errors there never stop a run."""

    def export(self, span: Span) -> None: ...

    def shutdown(self) -> None: ...


class Tracer:
    """Writes spans to ``path`` (``None``: nowhere) and hands them to ``sinks``."""

    def __init__(self, path: Path | None, sinks: Sequence[SpanSink] = ()) -> None:
        self.path = path
        self.sinks = list(sinks)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a killed process (what resume is for); only a power cut can lose
            # the last spans, and a commit no longer waits for the disk.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        for sink in self.sinks:
            try:
                sink.shutdown()
            except Exception:
                log.warning("span sink %s failed to shut down", type(sink).__name__, exc_info=True)

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def span(
        self, kind: SpanKind, name: str, round: int | None = None, inputs: Any = None, **attrs: Any
    ) -> Iterator[SpanHandle]:
        """Time the body as a child of the current span; ``round`` defaults to the parent's."""
        handle = SpanHandle(uuid.uuid4().hex)
        handle.attrs.update(attrs)
        parent = _current.get()
        if round is None and parent is not None:
            round = parent.round
        token = _current.set(_Active(handle, round))
        start = time.time()
        status, error = "ok", None
        try:
            yield handle
        except BaseException as err:
            status, error = "error", f"{type(err).__name__}: {err}"
            raise
        finally:
            end = time.time()
            _current.reset(token)
            self._finish(
                Span(
                    id=handle.id,
                    parent_id=parent.id if parent else None,
                    kind=kind,
                    name=name,
                    round=round,
                    start=start,
                    end=end,
                    status=status,
                    error=_clip_text(redact_text(error), MAX_STRING_CHARS) if error else None,
                    inputs=encode(inputs),
                    outputs=encode(handle.outputs),
                    attrs=encode(handle.attrs) if handle.attrs else None,
                    prompt_tokens=handle.prompt_tokens,
                    completion_tokens=handle.completion_tokens,
                )
            )

    def _finish(self, span: Span) -> None:
        if self._db is not None:
            row = span.model_dump()
            with self._lock:
                self._db.execute(
                    f"INSERT INTO spans ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()),
                )
        for sink in self.sinks:
            try:
                sink.export(span)
            except Exception:
                log.warning("span sink %s failed", type(sink).__name__, exc_info=True)


def current_span() -> SpanHandle | None:
    """The innermost open span of this context (async work inherits it), for code that adds to a
    span it did not open, such as an agent's fallback inside a teacher session."""
    active = _current.get()
    return active.handle if active is not None else None


def read_spans(path: Path, round_: int | None = None) -> list[Span]:
    if not path.exists():
        return []
    # not mode=ro: a read-only connection to a WAL database leaves -wal and -shm files behind in
    # the run directory; a read-write one that is the last to close removes them (a file the OS
    # write-protects is still opened read-only, and mode=rw never creates a database)
    db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    try:
        db.row_factory = sqlite3.Row
        where, args = ("WHERE round = ?", (round_,)) if round_ is not None else ("", ())
        return [Span(**dict(r)) for r in db.execute(f"SELECT * FROM spans {where} ORDER BY start", args)]
    finally:
        db.close()
