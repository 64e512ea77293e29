"""score and select: check every candidate, rank the usable ones, and pick the round's training data."""

from __future__ import annotations

from collections import Counter
from typing import Any

from teachloop.agents.engine import derived_seed
from teachloop.agents.guard import decision_of
from teachloop.agents.planner import Plan
from teachloop.agents.scorer import ScoredSample, rescored, score_candidates
from teachloop.agents.selector import select, sft_rows
from teachloop.environments.base import Task
from teachloop.loop import brains
from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.common import (
    current_plan,
    eval_questions,
    load_current_student,
    memory_hint,
    selected_before,
    trained_questions,
)
from teachloop.loop.state import LoopState, SampleCounts
from teachloop.training.generation import TokenUsage
from teachloop.training.rollouts import (
    pass_rates,
)


def score_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """Verifier, duplicate and contamination checks, then the ranking score of the usable samples:
    mined criteria (judge LLM or distilled reward model) and difficulty against the current student."""
    round_ = current_plan(state).round
    tasks = ctx.store.read_models(ctx.store.round(round_).revised, Task)
    with ctx.tracer.span("tool", f"{ctx.env.name}.verify", inputs={"candidates": len(tasks)}) as sp:
        scored = score_candidates(ctx.env, tasks, trained_questions(ctx, round_), eval_questions(ctx))
        sp.outputs = {
            "usable": sum(s.usable for s in scored),
            "unverified": sum(not s.verified for s in scored),
            "duplicate": sum(s.duplicate for s in scored),
            "contaminated": sum(s.contaminated for s in scored),
            "usable_by_skill": dict(Counter(s.task.skill for s in scored if s.usable)),
        }
    usable = [s.task for s in scored if s.usable]
    quality = dict(zip((t.id for t in usable), ctx.brains.judge.score(round_, usable), strict=True))
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
    ctx.store.write_models(ctx.store.round(round_).scored, scored)
    return brains.usage_update(ctx, round_, "score")


def _pass_rates(ctx: LoopContext, state: LoopState, round_: int, tasks: list[Task]) -> list[float | None]:
    cfg = ctx.config
    k = cfg.teacher.scoring.difficulty_samples
    if not k or not tasks:
        return [None] * len(tasks)
    model, tokenizer = load_current_student(ctx, state)
    inputs = {"tasks": len(tasks), "samples": k}
    with (
        memory_hint(ctx, round_, "measuring difficulty", "eval.batch_size", cfg.eval.batch_size),
        ctx.tracer.span("tool", "student.pass_rate", round=round_, inputs=inputs) as sp,
    ):
        usage = TokenUsage()
        rates = pass_rates(
            model,
            tokenizer,
            ctx.env,
            tasks,
            k,
            temperature=cfg.teacher.scoring.difficulty_temperature,
            max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            seed=derived_seed(cfg.seed, round_, "difficulty"),
            usage=usage,
        )
        sp.add_tokens(usage.prompt_tokens, usage.completion_tokens)
        sp.outputs = {"mean_pass_rate": sum(rates) / len(rates)}
    return list(rates)


def replay_fractions(state: LoopState, ctx: LoopContext, plan: Plan) -> dict[str, float]:
    """Each skill's share of replayed data: ``teacher.replay_fraction``, raised to the guard's share
    for every skill after a rolled-back round (rehearse what the kept model learnt) and for the
    dropped skills after a repaired one."""
    teacher = ctx.config.teacher
    fractions = {a.skill: teacher.replay_fraction for a in plan.allocations}
    decision = decision_of(state.get("guards", []), plan.round - 1)
    if decision is not None and decision.action in ("rolled_back", "repaired"):
        repaired = list(fractions) if decision.action == "rolled_back" else decision.dropped
        for skill in repaired:
            fractions[skill] = max(fractions.get(skill, 0.0), teacher.guard.replay_fraction)
    return fractions


def select_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    plan = current_plan(state)
    scored = ctx.store.read_models(ctx.store.round(plan.round).scored, ScoredSample)
    replay_pool = [s.task for s in selected_before(ctx, plan.round) if s.origin == "new"]
    replay = replay_fractions(state, ctx, plan)
    inputs = {"scored": len(scored), "replay_pool": len(replay_pool)}
    with ctx.tracer.span("agent", "selector", inputs=inputs) as sp:
        scoring = ctx.config.teacher.scoring
        chosen = select(
            scored,
            plan,
            replay_pool,
            replay,
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
    ctx.store.write_models(ctx.store.round(plan.round).selected, chosen)
    ctx.store.write_rows(ctx.store.round(plan.round).rows("sft"), sft_rows(ctx.env, chosen))
    counts = SampleCounts(
        round=plan.round,
        planned=plan.total,
        generated=len(scored),
        usable=sum(s.usable for s in scored),
        selected=len(chosen),
        replayed=sum(s.origin == "replay" for s in chosen),
    )
    return {"samples": [counts]}
