"""The loop's nodes: each reads its inputs from the run directory, calls an agent or a trainer,
writes its outputs whole, and returns a small state update.

Nodes are deterministic given the run's seed and the files before them, so a node re-run after a
crash writes the same artifacts again; no node appends to a file another run of it wrote.
Things that cannot be checkpointed (environment, tracer, config) come from the runtime context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from langgraph.runtime import Runtime

from teachloop.agents.diagnoser import WeaknessReport, diagnose
from teachloop.agents.engine import derived_seed, generate_for_plan
from teachloop.agents.planner import Plan, plan_round
from teachloop.agents.scorer import ScoredSample, score_candidates
from teachloop.agents.selector import SelectedSample, select, sft_rows
from teachloop.core.config import RunConfig
from teachloop.core.state import LoopState
from teachloop.core.store import RunStore
from teachloop.core.traces import Tracer
from teachloop.environments.base import Environment, Split, Task, normalize_question
from teachloop.environments.feedback import feedback_view, skill_tree
from teachloop.evals.evaluate import answer_and_score
from teachloop.evals.metrics import EvalSummary, ItemResult, summarize
from teachloop.training.sft import train_sft
from teachloop.training.student import load_student

ProgressFn = Callable[[str, int, str, float | None], None]
SPLITS: tuple[Split, ...] = ("dev", "test")


@dataclass
class LoopContext:
    config: RunConfig
    store: RunStore
    env: Environment
    tracer: Tracer
    base_student: Path
    progress: ProgressFn | None = None


def _split_path(store: RunStore, split: Split) -> Path:
    return store.root / "splits" / f"{split}.parquet"


def _split_tasks(ctx: LoopContext, split: Split) -> list[Task]:
    return ctx.store.read_models(_split_path(ctx.store, split), Task)


def _eval_questions(ctx: LoopContext) -> set[str]:
    return {normalize_question(t.question) for s in SPLITS for t in _split_tasks(ctx, s)}


def _plan(state: LoopState) -> Plan:
    return Plan.model_validate(state["plans"][-1])


# -- nodes -------------------------------------------------------------------------------------


def setup(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """Fix the dev and test splits on disk; the untouched student becomes round 0."""
    cfg = ctx.config
    sizes = {"dev": cfg.eval.dev_per_skill, "test": cfg.eval.test_per_skill}
    for split in SPLITS:
        with ctx.tracer.span(
            "tool", f"{ctx.env.name}.tasks", round=0, inputs={"split": split, "n": sizes[split]}
        ) as sp:
            tasks = ctx.env.tasks(split, sizes[split], cfg.seed)
            sp.outputs = {"tasks": len(tasks)}
        ctx.store.write_models(_split_path(ctx.store, split), tasks)
    return {"round": 0, "student": str(ctx.base_student), "stop_reason": None}


def evaluate(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    model, tokenizer = load_student(Path(state["student"]), dtype=getattr(torch, ctx.config.eval.dtype))
    tasks = {s: _split_tasks(ctx, s) for s in SPLITS}
    with ctx.tracer.span(
        "tool", "student.generate", round=round_, inputs={s: len(t) for s, t in tasks.items()}
    ):
        results = answer_and_score(model, tokenizer, ctx.env, tasks["dev"] + tasks["test"], ctx.config.eval)
    parts: dict[Split, list[ItemResult]] = {
        "dev": results[: len(tasks["dev"])],
        "test": results[len(tasks["dev"]) :],
    }
    summaries = []
    for split, part in parts.items():
        ctx.store.write_models(ctx.store.path(round_, f"eval_{split}.parquet"), part)
        summaries.append(summarize(round_, split, part))
    ctx.store.write_json(ctx.store.path(round_, "metrics.json"), {s.split: s.model_dump() for s in summaries})
    evals = [s.model_dump() for s in summaries]
    elapsed = sum(t["seconds"] for t in state.get("timings", []))
    reason = stop_reason({**state, "evals": state.get("evals", []) + evals}, ctx.config, elapsed)
    return {"evals": evals, "stop_reason": reason}


def diagnose_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    dev = {e["round"]: EvalSummary.model_validate(e) for e in state["evals"] if e["split"] == "dev"}
    results = ctx.store.read_models(ctx.store.path(round_, "eval_dev.parquet"), ItemResult)
    level = ctx.config.teacher.feedback
    tree = skill_tree(ctx.env) if level == "skill_tree" else None
    view = feedback_view(level, dev[round_], results, tree)
    previous = feedback_view(level, dev[round_ - 1], [], tree) if round_ - 1 in dev else None
    ctx.store.write_json(ctx.store.path(round_, "feedback.json"), view)
    with ctx.tracer.span("agent", "diagnoser.heuristic", round=round_, inputs={"feedback": level}) as sp:
        report = diagnose(view, previous)
        sp.outputs = report.summary
    ctx.store.write_json(ctx.store.path(round_, "weakness.json"), report)
    return {}


def plan_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    report = ctx.store.read_json(ctx.store.path(round_, "weakness.json"), WeaknessReport)
    teacher = ctx.config.teacher
    with ctx.tracer.span("agent", f"planner.{ctx.config.policy}", round=round_ + 1) as sp:
        previous = Plan.model_validate(state["plans"][-1]) if state.get("plans") else None
        plan = plan_round(
            report, ctx.env.skills, teacher.samples_per_round, ctx.config.policy, teacher.min_share, previous
        )
        sp.outputs = {a.skill: a.n for a in plan.allocations}
    ctx.store.write_json(ctx.store.path(plan.round, "plan.json"), plan)
    return {"plans": [plan.model_dump()]}


def generate_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    plan = _plan(state)
    with ctx.tracer.span(
        "tool", f"{ctx.env.name}.generate", round=plan.round, inputs={"planned": plan.total}
    ) as sp:
        known = _trained_questions(ctx, plan.round) | _eval_questions(ctx)
        tasks = generate_for_plan(ctx.env, plan, ctx.config.seed, ctx.config.teacher.oversample, known)
        sp.outputs = {"generated": len(tasks)}
    ctx.store.write_models(ctx.store.path(plan.round, "generated.parquet"), tasks)
    return {}


def _trained_questions(ctx: LoopContext, before_round: int) -> set[str]:
    return {normalize_question(s.task.question) for s in _selected_before(ctx, before_round)}


def _selected_before(ctx: LoopContext, before_round: int) -> list[SelectedSample]:
    out: list[SelectedSample] = []
    for r in range(1, before_round):
        path = ctx.store.path(r, "selected.parquet")
        if path.exists():
            out += ctx.store.read_models(path, SelectedSample)
    return out


def score_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = _plan(state).round
    tasks = ctx.store.read_models(ctx.store.path(round_, "generated.parquet"), Task)
    with ctx.tracer.span(
        "tool", f"{ctx.env.name}.verify", round=round_, inputs={"candidates": len(tasks)}
    ) as sp:
        scored = score_candidates(ctx.env, tasks, _trained_questions(ctx, round_), _eval_questions(ctx))
        sp.outputs = {
            "usable": sum(s.usable for s in scored),
            "unverified": sum(not s.verified for s in scored),
            "duplicate": sum(s.duplicate for s in scored),
            "contaminated": sum(s.contaminated for s in scored),
        }
    ctx.store.write_models(ctx.store.path(round_, "scored.parquet"), scored)
    return {}


def select_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    plan = _plan(state)
    scored = ctx.store.read_models(ctx.store.path(plan.round, "scored.parquet"), ScoredSample)
    replay_pool = [s.task for s in _selected_before(ctx, plan.round) if s.origin == "new"]
    with ctx.tracer.span("agent", "selector", round=plan.round) as sp:
        chosen = select(
            scored,
            plan,
            replay_pool,
            ctx.config.teacher.replay_fraction,
            derived_seed(ctx.config.seed, plan.round),
        )
        sp.outputs = {"selected": len(chosen)}
    ctx.store.write_models(ctx.store.path(plan.round, "selected.parquet"), chosen)
    ctx.store.write_rows(ctx.store.path(plan.round, "sft.parquet"), sft_rows(ctx.env, chosen))
    counts = {
        "round": plan.round,
        "planned": plan.total,
        "generated": len(scored),
        "usable": sum(s.usable for s in scored),
        "selected": len(chosen),
        "replayed": sum(s.origin == "replay" for s in chosen),
    }
    return {"samples": [counts]}


def train_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = _plan(state).round
    dataset = ctx.store.read_dataset(ctx.store.path(round_, "sft.parquet"))
    out = ctx.store.path(round_, "model")
    settings = ctx.config.train.for_round(round_)
    inputs = {"rows": len(dataset), "learning_rate": settings.learning_rate}
    if len(dataset) == 0:  # e.g. a finite training pool the earlier rounds used up: keep the student
        ctx.store.write_json(ctx.store.path(round_, "train_metrics.json"), {"skipped": "no training data"})
        return {"round": round_, "student": state["student"]}
    with ctx.tracer.span("tool", "trl.SFTTrainer", round=round_, inputs=inputs) as sp:
        metrics = train_sft(
            Path(state["student"]), dataset, out, settings, seed=derived_seed(ctx.config.seed, round_)
        )
        sp.outputs = metrics
    ctx.store.write_json(ctx.store.path(round_, "train_metrics.json"), metrics)
    return {"round": round_, "student": str(out)}


def stop_reason(state: dict[str, Any], config: RunConfig, elapsed: float) -> str | None:
    """Why the loop should stop after the latest evaluation, or None to go on."""
    dev = [EvalSummary.model_validate(e) for e in state.get("evals", []) if e["split"] == "dev"]
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
    trained = sum(s["selected"] for s in state.get("samples", []))
    if stop.max_samples is not None and trained >= stop.max_samples:
        return f"data budget of {stop.max_samples} samples spent"
    return None


NodeFn = Callable[[LoopState, LoopContext], dict[str, Any]]
#: Nodes that work on the next round's data; the others work on the current round.
_NEXT_ROUND_NODES = frozenset({"plan", "generate", "score", "select", "train"})


class GraphNode(Protocol):
    def __call__(self, state: LoopState, *, runtime: Runtime[LoopContext]) -> dict[str, Any]: ...


def as_graph_node(name: str, fn: NodeFn) -> GraphNode:
    """Wrap a node with a trace span, live progress and its wall time in the state."""

    def run(state: LoopState, *, runtime: Runtime[LoopContext]) -> dict[str, Any]:
        ctx = runtime.context
        round_ = state.get("round", 0) + (1 if name in _NEXT_ROUND_NODES else 0)
        if ctx.progress:
            ctx.progress(name, round_, "start", None)
        start = time.perf_counter()
        with ctx.tracer.span("node", name, round=round_):
            update = fn(state, ctx)
        seconds = time.perf_counter() - start
        update["timings"] = [{"round": round_, "node": name, "seconds": round(seconds, 3)}]
        if ctx.progress:
            ctx.progress(name, round_, "end", seconds)
        return update

    return run
