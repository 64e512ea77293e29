"""The loop's nodes: each reads its inputs from the run directory, calls an agent or a trainer,
writes its outputs whole, and returns a small state update.

Nodes are deterministic given the run's seed and the files before them, so a node re-run after a
crash writes the same artifacts again; no node appends to a file another run of it wrote.
Things that cannot be checkpointed (environment, tracer, config) come from the runtime context.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from langgraph.runtime import Runtime
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from teachloop.agents.diagnoser import WeaknessReport, diagnose
from teachloop.agents.engine import derived_seed, generate_for_plan
from teachloop.agents.feedback import feedback_view, skill_tree
from teachloop.agents.planner import Plan, plan_round
from teachloop.agents.recipe import assign_trainers
from teachloop.agents.scorer import ScoredSample, rescored, score_candidates
from teachloop.agents.selector import SelectedSample, select, sft_rows
from teachloop.criteria.graph import CRITERIA_DIR, REPORT_FILE, load_report
from teachloop.environments.base import Split, Task, TaskGenerator, normalize_question
from teachloop.evals.evaluate import evaluate_student
from teachloop.evals.metrics import EvalSummary, ItemResult, summarize
from teachloop.foundation.errors import ResourceError
from teachloop.foundation.faults import is_out_of_memory
from teachloop.loop import brains
from teachloop.loop.config import RunConfig
from teachloop.loop.context import SPLITS, LoopContext
from teachloop.loop.state import LoopState
from teachloop.tracing.store import RunStore
from teachloop.training.config import Trainer
from teachloop.training.generation import TokenUsage
from teachloop.training.job import TRAINER_CLASSES, build_job, clear_outputs, run_stage, stage_metrics
from teachloop.training.launch import launch_job
from teachloop.training.rollouts import (
    Rollout,
    dpo_rows,
    grpo_rows,
    pass_rates,
    rollout_counts,
    sample_rollouts,
)
from teachloop.training.student import compute_device, load_student, weights_dtype


def _split_path(store: RunStore, split: Split) -> Path:
    return store.root / "splits" / f"{split}.parquet"


def _split_tasks(ctx: LoopContext, split: Split) -> list[Task]:
    return ctx.store.read_models(_split_path(ctx.store, split), Task)


def _eval_questions(ctx: LoopContext) -> set[str]:
    return {normalize_question(t.question) for s in SPLITS for t in _split_tasks(ctx, s)}


def _plan(state: LoopState) -> Plan:
    return Plan.model_validate(state["plans"][-1])


@contextmanager
def _memory_hint(ctx: LoopContext, round_: int, what: str, setting: str, value: int) -> Iterator[None]:
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


# -- nodes -------------------------------------------------------------------------------------


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
        ctx.store.write_models(_split_path(ctx.store, split), tasks)
    brains.prepare_criteria(ctx)
    return {
        "round": 0,
        "student": str(ctx.base_student),
        "stop_reason": None,
        **brains.usage_update(ctx, 0, "setup"),
    }


def evaluate(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    tasks = {s: _split_tasks(ctx, s) for s in SPLITS}
    with _memory_hint(ctx, round_, "evaluation", "eval.batch_size", ctx.config.eval.batch_size):
        results = evaluate_student(
            Path(state["student"]), ctx.env, tasks["dev"] + tasks["test"], ctx.config.eval, ctx.tracer
        )
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
    inputs = {
        "feedback": level,
        "dev_accuracy": {k: m.accuracy for k, m in view.skills.items()} or view.accuracy,
        "failures": len(view.failures),
        "compared_with_round": round_ - 1 if previous else None,
    }
    with ctx.tracer.span("agent", "diagnoser.heuristic", inputs=inputs) as sp:
        report = diagnose(view, previous)
        sp.outputs = {
            "summary": report.summary,
            "skills": [
                {"skill": w.skill, "accuracy": w.accuracy, "change": w.change, "severity": w.severity}
                for w in report.skills
            ],
        }
    report = brains.llm_diagnosis(ctx, report, [r for r in results if not r.solved])
    ctx.store.write_json(ctx.store.path(round_, "weakness.json"), report)
    return brains.usage_update(ctx, round_, "diagnose")


def plan_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    report = ctx.store.read_json(ctx.store.path(round_, "weakness.json"), WeaknessReport)
    teacher = ctx.config.teacher
    previous = Plan.model_validate(state["plans"][-1]) if state.get("plans") else None
    if ctx.config.uses_llm("planner"):
        plan = brains.llm_planning(ctx, report, previous)
    else:
        inputs = {
            "weakness": report.summary,
            "budget": teacher.samples_per_round,
            "min_share": teacher.min_share,
        }
        with ctx.tracer.span("agent", f"planner.{ctx.config.policy}", inputs=inputs) as sp:
            plan = plan_round(
                report,
                ctx.env.skills,
                teacher.samples_per_round,
                ctx.config.policy,
                teacher.min_share,
                previous,
            )
            sp.outputs = [a.model_dump() for a in plan.allocations]
    train = ctx.config.train  # which trainer each skill gets, and why, goes into plan.json
    plan = assign_trainers(plan, report, previous, train.trainer, train.stall_threshold)
    ctx.store.write_json(ctx.store.path(plan.round, "plan.json"), plan)
    return {"plans": [plan.model_dump()], **brains.usage_update(ctx, plan.round, "plan")}


def generate_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    plan = _plan(state)
    known = _trained_questions(ctx, plan.round) | _eval_questions(ctx)
    written, rest = brains.synthesis(ctx, plan, known)
    known |= {normalize_question(t.question) for t in written}
    tasks: list[Task] = []
    if isinstance(ctx.env, TaskGenerator) or not ctx.config.uses_llm("synthesizer"):
        inputs = {
            "planned": {a.skill: a.n for a in rest.allocations},
            "oversample": ctx.config.teacher.oversample,
        }
        with ctx.tracer.span("agent", "engine.heuristic", inputs=inputs) as sp:
            tasks = generate_for_plan(
                ctx.env, rest, ctx.config.seed, ctx.config.teacher.oversample, known, ctx.tracer
            )
            sp.outputs = {"generated": len(tasks), "by_skill": dict(Counter(t.skill for t in tasks))}
    ctx.store.write_models(ctx.store.path(plan.round, "generated.parquet"), written + tasks)
    return brains.usage_update(ctx, plan.round, "generate")


def revise_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """CoachLM: weak samples rewritten (LLM reviser) or left as they are (heuristic)."""
    round_ = _plan(state).round
    tasks = ctx.store.read_models(ctx.store.path(round_, "generated.parquet"), Task)
    outcome = brains.revision(ctx, round_, tasks)
    ctx.store.write_models(ctx.store.path(round_, "revisions.parquet"), outcome.records)
    ctx.store.write_models(ctx.store.path(round_, "revised.parquet"), outcome.tasks)
    return brains.usage_update(ctx, round_, "revise")


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
    """Verifier, duplicate and contamination checks, then the ranking score of the usable samples:
    mined criteria (judge LLM or distilled reward model) and difficulty against the current student."""
    round_ = _plan(state).round
    tasks = ctx.store.read_models(ctx.store.path(round_, "revised.parquet"), Task)
    with ctx.tracer.span("tool", f"{ctx.env.name}.verify", inputs={"candidates": len(tasks)}) as sp:
        scored = score_candidates(ctx.env, tasks, _trained_questions(ctx, round_), _eval_questions(ctx))
        sp.outputs = {
            "usable": sum(s.usable for s in scored),
            "unverified": sum(not s.verified for s in scored),
            "duplicate": sum(s.duplicate for s in scored),
            "contaminated": sum(s.contaminated for s in scored),
            "usable_by_skill": dict(Counter(s.task.skill for s in scored if s.usable)),
        }
    usable = [s.task for s in scored if s.usable]
    quality = dict(zip((t.id for t in usable), _quality(ctx, round_, usable), strict=True))
    difficulty = dict(zip((t.id for t in usable), _pass_rates(ctx, state, round_, usable), strict=True))
    weights = ctx.config.teacher.scoring
    scored = [
        rescored(
            s,
            quality.get(s.task.id),
            difficulty.get(s.task.id),
            weights.criteria_weight,
            weights.difficulty_weight,
        )
        for s in scored
    ]
    ctx.store.write_models(ctx.store.path(round_, "scored.parquet"), scored)
    return brains.usage_update(ctx, round_, "score")


def _quality(ctx: LoopContext, round_: int, tasks: list[Task]) -> list[float | None]:
    """Criteria scores: from the distilled reward model (as percentiles within the round) when one
    is set, else from the judge LLM when the run has criteria, else not measured."""
    scorer_dir = ctx.config.teacher.criteria.scorer
    path = ctx.store.root / CRITERIA_DIR / REPORT_FILE
    if not tasks or (scorer_dir is None and not path.is_file()):
        return [None] * len(tasks)
    if scorer_dir is None:
        return brains.criteria_check(ctx, round_, tasks, load_report(path))
    from teachloop.criteria.distill import RewardScorer, percentiles, sample_text

    with ctx.tracer.span("tool", "reward_model.score", round=round_, inputs={"samples": len(tasks)}) as sp:
        rewards = RewardScorer.load(scorer_dir).score(
            [sample_text(t.question, t.solution, t.answer) for t in tasks]
        )
        sp.outputs = {"min": min(rewards), "max": max(rewards)}
    return list(percentiles(rewards))


def _pass_rates(ctx: LoopContext, state: LoopState, round_: int, tasks: list[Task]) -> list[float | None]:
    cfg = ctx.config
    k = cfg.teacher.scoring.difficulty_samples
    if not k or not tasks:
        return [None] * len(tasks)
    model, tokenizer = _student(ctx, state)
    inputs = {"tasks": len(tasks), "samples": k}
    with (
        _memory_hint(ctx, round_, "measuring difficulty", "eval.batch_size", cfg.eval.batch_size),
        ctx.tracer.span("tool", "student.pass_rate", round=round_, inputs=inputs) as sp,
    ):
        usage = TokenUsage()
        rates = pass_rates(
            model,
            tokenizer,
            ctx.env,
            tasks,
            k,
            temperature=cfg.train.grpo.temperature,
            max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            seed=derived_seed(cfg.seed, round_, "difficulty"),
            usage=usage,
        )
        sp.add_tokens(usage.prompt_tokens, usage.completion_tokens)
        sp.outputs = {"mean_pass_rate": sum(rates) / len(rates)}
    return list(rates)


def _student(ctx: LoopContext, state: LoopState) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    device = compute_device()
    dtype = weights_dtype(ctx.config.eval.dtype, device)
    with ctx.tracer.span("tool", "student.load", inputs={"path": state["student"], "dtype": dtype}):
        return load_student(Path(state["student"]), device=device, dtype=dtype)


def select_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    plan = _plan(state)
    scored = ctx.store.read_models(ctx.store.path(plan.round, "scored.parquet"), ScoredSample)
    replay_pool = [s.task for s in _selected_before(ctx, plan.round) if s.origin == "new"]
    inputs = {"scored": len(scored), "replay_pool": len(replay_pool)}
    with ctx.tracer.span("agent", "selector", inputs=inputs) as sp:
        scoring = ctx.config.teacher.scoring
        chosen = select(
            scored,
            plan,
            replay_pool,
            ctx.config.teacher.replay_fraction,
            derived_seed(ctx.config.seed, plan.round),
            scoring.selection,
            scoring.threshold,
            scoring.temperature,
        )
        sp.outputs = {
            "selected": len(chosen),
            "by_skill": dict(Counter(s.task.skill for s in chosen)),
            "replayed": sum(s.origin == "replay" for s in chosen),
        }
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


def needs_rollouts(state: LoopState) -> bool:
    """Whether this round's plan gives any skill data for DPO or GRPO (which need the student's samples)."""
    return any(a.trainer != "sft" and a.n > 0 for a in _plan(state).allocations)


def rollout_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """The student samples each selected task of a DPO/GRPO skill; the verdicts make the DPO pairs
    and GRPO prompts (rollouts.parquet, dpo.parquet, grpo.parquet). See training/rollouts.py."""
    plan = _plan(state)
    trainers = {a.skill: a.trainer for a in plan.allocations}
    selected = ctx.store.read_models(ctx.store.path(plan.round, "selected.parquet"), SelectedSample)
    todo = [(s.task, trainers[s.task.skill]) for s in selected if trainers.get(s.task.skill, "sft") != "sft"]
    cfg = ctx.config
    model, tokenizer = _student(ctx, state)
    inputs = {
        "tasks": len(todo),
        "dpo_samples": cfg.train.dpo.samples,
        "grpo_probe": cfg.train.grpo.probe_samples,
    }
    with (
        _memory_hint(ctx, plan.round, "sampling rollouts", "eval.batch_size", cfg.eval.batch_size),
        ctx.tracer.span("tool", "student.rollout", inputs=inputs) as sp,
    ):
        usage = TokenUsage()
        rollouts = sample_rollouts(
            model,
            tokenizer,
            ctx.env,
            todo,
            cfg.train,
            max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            seed=derived_seed(cfg.seed, plan.round, "rollout"),
            usage=usage,
        )
        sp.add_tokens(usage.prompt_tokens, usage.completion_tokens)
        sp.outputs = rollout_counts(rollouts)
    ctx.store.write_models(ctx.store.path(plan.round, "rollouts.parquet"), rollouts)
    ctx.store.write_rows(ctx.store.path(plan.round, "dpo.parquet"), dpo_rows(ctx.env, rollouts))
    ctx.store.write_rows(ctx.store.path(plan.round, "grpo.parquet"), grpo_rows(ctx.env, rollouts))
    return {}


def train_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """Train the round's stages in order (SFT, DPO, GRPO; see training/job.py), in this process
    or under ``accelerate launch`` (train.launcher)."""
    round_ = _plan(state).round
    cfg = ctx.config
    rows: dict[Trainer, tuple[Path, int]] = {}
    rollouts_path = ctx.store.path(round_, "rollouts.parquet")
    rollouts = ctx.store.read_models(rollouts_path, Rollout) if rollouts_path.exists() else []
    taken = [r.task.id for r in rollouts if r.use != "sft"]
    sft_path = ctx.store.path(round_, "sft.parquet")
    rows["sft"] = (sft_path, len(ctx.store.read_dataset(sft_path)) - len(taken))
    for trainer in ("dpo", "grpo"):
        if rollouts:
            path = ctx.store.path(round_, f"{trainer}.parquet")
            rows[trainer] = (path, len(ctx.store.read_dataset(path)))
    settings = cfg.train.for_round(round_)
    job = build_job(
        Path(state["student"]),
        ctx.store.round_dir(round_),
        rows,
        taken,
        settings,
        derived_seed(cfg.seed, round_),
        cfg.env,
        cfg.env_options,
    )
    if not job.stages:  # e.g. a finite training pool the earlier rounds used up: keep the student
        ctx.store.write_json(job.result, {"rows": 0.0})
        return {"round": round_, "student": state["student"]}
    clear_outputs(job)
    job_path = ctx.store.path(round_, "train_job.json")
    if settings.launcher == "accelerate":
        launched = {"stages": [s.trainer for s in job.stages], "config": str(settings.accelerate_config)}
        with ctx.tracer.span("tool", "accelerate.launch", inputs=launched) as sp:
            metrics = launch_job(
                job,
                job_path,
                settings.accelerate_config,
                settings.accelerate_args,
                job_path.with_name("train.log"),
            )
            sp.outputs = metrics
    else:
        ctx.store.write_json(job_path, job.model_dump(mode="json"))
        metrics = {}
        for index, stage in enumerate(job.stages):
            inputs: dict[str, Any] = {
                "rows": stage.rows,
                "student": str(job.start_of(index)),
                "out": str(stage.out),
                "learning_rate": settings.stage_learning_rate(stage.trainer),
                **settings.model_dump(include={"epochs", "batch_size", "lora", "lr_scheduler"}),
            }
            with (
                _memory_hint(ctx, round_, "training", "train.batch_size", settings.batch_size),
                ctx.tracer.span("tool", f"trl.{TRAINER_CLASSES[stage.trainer]}", inputs=inputs) as sp,
            ):
                part = stage_metrics(stage, run_stage(job, index, ctx.env))
                sp.outputs = part
            metrics |= part
        ctx.store.write_json(job.result, metrics)
    return {"round": round_, "student": str(ctx.store.path(round_, "model"))}


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
_NEXT_ROUND_NODES = frozenset({"plan", "generate", "revise", "score", "select", "rollout", "train"})


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
        with ctx.tracer.span("node", name, round=round_) as sp:
            update = fn(state, ctx)
            sp.outputs = update
        seconds = time.perf_counter() - start
        update["timings"] = [{"round": round_, "node": name, "seconds": round(seconds, 3)}]
        if ctx.progress:
            ctx.progress(name, round_, "end", seconds)
        return update

    return run
