"""setup and evaluate: fix the splits, score the student on dev and test, decide whether to stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teachloop.environments.base import Split
from teachloop.evals.evaluate import evaluate_student
from teachloop.evals.metrics import ItemResult, summarize
from teachloop.foundation.types import SPLITS
from teachloop.loop import brains
from teachloop.loop.config import RunConfig
from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.common import (
    memory_hint,
    split_tasks,
)
from teachloop.loop.state import LoopState


def setup(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """Fix the dev and test splits on disk, mine quality criteria when given preference pairs;
    the untouched student becomes round 0."""
    cfg = ctx.config
    sizes = {"dev": cfg.eval.dev_per_skill, "test": cfg.eval.test_per_skill}
    for split in SPLITS:
        inputs = {"split": split, "n": sizes[split], "seed": cfg.seed}
        with ctx.tracer.span("tool", f"{ctx.env.name}.tasks", inputs=inputs) as sp:
            tasks = ctx.env.tasks(split, sizes[split], cfg.seed)
            sp.outputs = {"tasks": len(tasks), "first": tasks[0].question if tasks else None}
        ctx.store.write_models(ctx.store.split(split), tasks)
    brains.prepare_criteria(ctx)
    return {
        "round": 0,
        "student": str(ctx.base_student),
        "stop_reason": None,
        **brains.usage_update(ctx, 0, "setup"),
    }


def evaluate(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    tasks = {s: split_tasks(ctx, s) for s in SPLITS}
    with memory_hint(ctx, round_, "evaluation", "eval.batch_size", ctx.config.eval.batch_size):
        results = evaluate_student(
            Path(state["student"]), ctx.env, tasks["dev"] + tasks["test"], ctx.config.eval, ctx.tracer
        )
    parts: dict[Split, list[ItemResult]] = {
        "dev": results[: len(tasks["dev"])],
        "test": results[len(tasks["dev"]) :],
    }
    summaries = []
    for split, part in parts.items():
        ctx.store.write_models(ctx.store.round(round_).eval(split), part)
        summaries.append(summarize(round_, split, part))
    ctx.store.write_json(ctx.store.round(round_).metrics, {s.split: s.model_dump() for s in summaries})
    elapsed = sum(t.seconds for t in state.get("timings", []))
    reason = stop_reason({**state, "evals": state.get("evals", []) + summaries}, ctx.config, elapsed)
    return {"evals": summaries, "stop_reason": reason}


def stop_reason(state: LoopState, config: RunConfig, elapsed: float) -> str | None:
    """Why the loop should stop after the latest evaluation, or None to go on."""
    dev = [e for e in state.get("evals", []) if e.split == "dev"]
    if state["round"] >= config.rounds:
        return f"completed {config.rounds} round(s)"
    stop = config.stop
    if stop.target_accuracy is not None and dev and dev[-1].overall.accuracy >= stop.target_accuracy:
        return f"dev accuracy {dev[-1].overall.accuracy:.1%} reached the target {stop.target_accuracy:.1%}"
    if stop.patience is not None and len(dev) > stop.patience:
        best_before = max(d.overall.accuracy for d in dev[: -stop.patience])
        if all(d.overall.accuracy <= best_before for d in dev[-stop.patience :]):
            return f"no dev gain for {stop.patience} round(s)"
    if stop.max_minutes is not None and elapsed >= stop.max_minutes * 60:
        return f"time budget of {stop.max_minutes:g} min spent"
    trained = sum({s.round: s.selected for s in state.get("samples", [])}.values())  # a review recounts
    if stop.max_samples is not None and trained >= stop.max_samples:
        return f"data budget of {stop.max_samples} samples spent"
    return None
