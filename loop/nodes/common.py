"""What several nodes share: the fixed dev/test splits, the current plan, the data earlier rounds
trained on, the current student, and turning an out-of-memory error into a line that says what to lower."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from teachloop.agents.planner import Plan
from teachloop.agents.selector import SelectedSample
from teachloop.environments.base import Split, Task, normalize_question
from teachloop.foundation.errors import ResourceError
from teachloop.foundation.faults import is_out_of_memory
from teachloop.foundation.types import SPLITS
from teachloop.loop.context import LoopContext
from teachloop.loop.state import LoopState
from teachloop.training.student import compute_device, load_student, weights_dtype


def split_tasks(ctx: LoopContext, split: Split) -> list[Task]:
    return ctx.store.read_models(ctx.store.split(split), Task)


def eval_questions(ctx: LoopContext, probes: bool = True) -> set[str]:
    """Questions training must never use: dev, test and (with ``probes``) the curriculum's level probes."""
    questions = {normalize_question(t.question) for s in SPLITS for t in split_tasks(ctx, s)}
    if probes:
        for r in ctx.store.rounds():
            path = ctx.store.round(r).probe
            if path.is_file():
                questions |= {normalize_question(row["question"]) for row in ctx.store.read_rows(path)}
    return questions


def current_plan(state: LoopState) -> Plan:
    return state["plans"][-1]


@contextmanager
def memory_hint(ctx: LoopContext, round_: int, what: str, setting: str, value: int) -> Iterator[None]:
    """Turn an out-of-memory error into one line saying which setting to lower before resuming
    (the node's outputs are written whole or not at all, so the resumed node starts clean)."""
    try:
        yield
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        root = ctx.store.root
        raise ResourceError(
            f"round {round_}: {what} ran out of memory at {setting}={value}; lower {setting} in "
            f"{ctx.store.config_path}, then run 'teachloop resume {root}'"
        ) from err


def trained_questions(ctx: LoopContext, before_round: int) -> set[str]:
    return {normalize_question(s.task.question) for s in selected_before(ctx, before_round)}


def selected_before(ctx: LoopContext, before_round: int) -> list[SelectedSample]:
    out: list[SelectedSample] = []
    for r in range(1, before_round):
        path = ctx.store.round(r).selected
        if path.exists():
            out += ctx.store.read_models(path, SelectedSample)
    return out


def load_current_student(
    ctx: LoopContext, state: LoopState
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    device = compute_device()
    dtype = weights_dtype(ctx.config.eval.dtype, device)
    with ctx.tracer.span("tool", "student.load", inputs={"path": state["student"], "dtype": dtype}):
        return load_student(Path(state["student"]), device=device, dtype=dtype)
