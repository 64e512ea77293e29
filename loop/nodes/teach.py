"""The teacher's nodes: diagnose the dev results, plan the round, generate tasks, revise weak ones
(CoachLM). Each reads its inputs, calls its role on the brain the run chose (``ctx.brains``), and
writes what comes back."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from teachloop.agents.curriculum import Curriculum, apply_curriculum
from teachloop.agents.diagnoser import WeaknessReport
from teachloop.agents.feedback import feedback_view, skill_tree
from teachloop.agents.planner import shortfalls
from teachloop.agents.recipe import assign_trainers
from teachloop.environments.base import Task
from teachloop.evals.metrics import ItemResult
from teachloop.loop import brains
from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.common import (
    current_plan,
    eval_questions,
    trained_questions,
)
from teachloop.loop.nodes.frontier import uses_curriculum
from teachloop.loop.nodes.guard import student_round
from teachloop.loop.state import LoopState

logger = logging.getLogger(__name__)


def diagnose_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    dev = {e.round: e for e in state["evals"] if e.split == "dev"}
    # the student's own results: a round the guard rolled back is diagnosed on the model it kept,
    # compared with nothing (that model has not changed since it was last diagnosed)
    seen = student_round(state, round_)
    before = student_round(state, round_ - 1) if round_ > 0 and seen == round_ else None
    results = ctx.store.read_models(ctx.store.round(seen).eval("dev"), ItemResult)
    level = ctx.config.teacher.feedback
    tree = skill_tree(ctx.env) if level == "skill_tree" else None
    view = feedback_view(level, dev[seen], results, tree).model_copy(update={"round": round_})
    previous = feedback_view(level, dev[before], [], tree) if before is not None and before in dev else None
    ctx.store.write_json(ctx.store.round(round_).feedback, view)
    report = ctx.brains.diagnoser.diagnose(view, previous, [r for r in results if not r.solved])
    ctx.store.write_json(ctx.store.round(round_).weakness, report)
    return brains.usage_update(ctx, round_, "diagnose")


def plan_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    report = ctx.store.read_json(ctx.store.round(round_).weakness, WeaknessReport)
    previous = state["plans"][-1] if state.get("plans") else None
    plan = ctx.brains.planner.plan(report, previous)
    frontier = ctx.store.round(plan.round).curriculum
    if uses_curriculum(ctx) and frontier.is_file():  # levels at the frontier, budget by learning progress
        teacher = ctx.config.teacher
        curriculum = ctx.store.read_json(frontier, Curriculum)
        inputs = {"probed": curriculum.probed}
        with ctx.tracer.span("agent", "curriculum", round=plan.round, inputs=inputs) as sp:
            plan = apply_curriculum(plan, curriculum, teacher.min_share, teacher.curriculum.exploration)
            sp.outputs = [a.model_dump() for a in plan.allocations]
    train = ctx.config.train  # which trainer each skill gets, and why, goes into plan.json
    plan = assign_trainers(plan, report, previous, train.trainer, train.stall_threshold)
    ctx.store.write_json(ctx.store.round(plan.round).plan, plan)
    return {"plans": [plan], **brains.usage_update(ctx, plan.round, "plan")}


def generate_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    plan = current_plan(state)
    known = trained_questions(ctx, plan.round) | eval_questions(ctx)
    report = ctx.store.read_json(ctx.store.round(plan.round - 1).weakness, WeaknessReport)
    tasks = ctx.brains.task_source.tasks(plan, report, known)
    ctx.store.write_models(ctx.store.round(plan.round).generated, tasks)
    short = shortfalls(plan, Counter(t.skill for t in tasks))
    if short:  # the plan as made stays in the state; plan.json records what could not be made
        path = ctx.store.round(plan.round).plan
        ctx.store.write_json(path, plan.model_copy(update={"shortfalls": short}))
        filled = ", ".join(f"{s.skill} {s.made} of {s.planned}" for s in short)
        logger.warning("round %d: could not make every planned sample: %s (see %s)", plan.round, filled, path)
    return brains.usage_update(ctx, plan.round, "generate")


def revise_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """CoachLM: weak samples rewritten (LLM reviser) or left as they are (heuristic)."""
    round_ = current_plan(state).round
    tasks = ctx.store.read_models(ctx.store.round(round_).generated, Task)
    outcome = ctx.brains.reviser.revise(round_, tasks)
    ctx.store.write_models(ctx.store.round(round_).revisions, outcome.records)
    ctx.store.write_models(ctx.store.round(round_).revised, outcome.tasks)
    return brains.usage_update(ctx, round_, "revise")
