"""What every node gets besides the checkpointed state: things that cannot be serialised (the
environment, the tracer, the teacher client, the roles' brains) and the run's configuration and store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from teachloop.environments.base import Environment
from teachloop.llm.client import Teacher
from teachloop.loop.brains import Brains
from teachloop.loop.config import RunConfig
from teachloop.tracing.spans import Tracer
from teachloop.tracing.store import RunStore
from teachloop.tracing.tracking import RunTracking

ProgressFn = Callable[[str, int, str, float | None], None]


@dataclass
class LoopContext:
    config: RunConfig
    store: RunStore
    env: Environment
    tracer: Tracer
    base_student: Path
    brains: Brains
    progress: ProgressFn | None = None
    teacher: Teacher | None = None
    tracking: RunTracking | None = None
