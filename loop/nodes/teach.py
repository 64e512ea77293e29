"""The teacher's nodes: diagnose the dev results, plan the round, generate tasks, revise weak ones (CoachLM)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from teachloop.agents.diagnoser import WeaknessReport, diagnose
from teachloop.agents.engine import generate_for_plan
from teachloop.agents.feedback import feedback_view, skill_tree
from teachloop.agents.planner import plan_round
from teachloop.agents.recipe import assign_trainers
from teachloop.environments.base import Task, TaskGenerator, normalize_question
from teachloop.evals.metrics import ItemResult
from teachloop.loop import brains
from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.common import (
    current_plan,
    eval_questions,
    trained_questions,
)
from teachloop.loop.state import LoopState


def diagnose_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    dev = {e.round: e for e in state["evals"] if e.split == "dev"}
    results = ctx.store.read_models(ctx.store.round(round_).eval("dev"), ItemResult)
    level = ctx.config.teacher.feedback
    tree = skill_tree(ctx.env) if level == "skill_tree" else None
    view = feedback_view(level, dev[round_], results, tree)
    previous = feedback_view(level, dev[round_ - 1], [], tree) if round_ - 1 in dev else None
    ctx.store.write_json(ctx.store.round(round_).feedback, view)
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
    ctx.store.write_json(ctx.store.round(round_).weakness, report)
    return brains.usage_update(ctx, round_, "diagnose")


def plan_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    report = ctx.store.read_json(ctx.store.round(round_).weakness, WeaknessReport)
    teacher = ctx.config.teacher
    previous = state["plans"][-1] if state.get("plans") else None
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
    ctx.store.write_json(ctx.store.round(plan.round).plan, plan)
    return {"plans": [plan], **brains.usage_update(ctx, plan.round, "plan")}


def generate_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    plan = current_plan(state)
    known = trained_questions(ctx, plan.round) | eval_questions(ctx)
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
    ctx.store.write_models(ctx.store.round(plan.round).generated, written + tasks)
    return brains.usage_update(ctx, plan.round, "generate")


def revise_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """CoachLM: weak samples rewritten (LLM reviser) or left as they are (heuristic)."""
    round_ = current_plan(state).round
    tasks = ctx.store.read_models(ctx.store.round(round_).generated, Task)
    outcome = brains.revision(ctx, round_, tasks)
    ctx.store.write_models(ctx.store.round(round_).revisions, outcome.records)
    ctx.store.write_models(ctx.store.round(round_).revised, outcome.tasks)
    return brains.usage_update(ctx, round_, "revise")
