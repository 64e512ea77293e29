"""The LLM side of the loop's nodes: each role thinks with its configured brain, and falls back.

A node asks here for its role's work. With the heuristic brain nothing calls a model. With the
openai brain the role's LLM agent runs on the run's ``Teacher``; when its reply is unusable
(malformed after repair, a request that failed for good) the node falls back to the heuristic
result for that call, says so in its span, and the loop goes on. Each node reports what its
calls cost (``llm_usage`` in the state, per round and role; summed in summary.json).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from teachloop.agents.config import Policy
from teachloop.agents.diagnoser import WeaknessReport
from teachloop.agents.llm_diagnoser import llm_diagnose
from teachloop.agents.llm_planner import llm_plan
from teachloop.agents.planner import Plan, plan_round
from teachloop.agents.reviser import RevisionOutcome, keep_unrevised, revise
from teachloop.agents.synthesizer import synthesize
from teachloop.criteria.agents import CriteriaReport, check_samples
from teachloop.criteria.graph import CRITERIA_DIR, REPORT_FILE, load_report, mine
from teachloop.criteria.pairs import PairSample, load_pairs
from teachloop.environments.base import Task
from teachloop.evals.metrics import ItemResult
from teachloop.foundation.files import atomic_write_text
from teachloop.llm.client import Teacher
from teachloop.loop.state import LLMSpend

if TYPE_CHECKING:
    from teachloop.loop.context import LoopContext

#: The planner's fallback when the LLM planner's reply is unusable.
FALLBACK_POLICY: Policy = "deficit"


def _teacher(ctx: LoopContext) -> Teacher:
    if ctx.teacher is None:
        raise RuntimeError("a role uses the openai brain but the run has no teacher client")
    return ctx.teacher


def usage_update(ctx: LoopContext, round_: int, node: str) -> dict[str, Any]:
    """The state update that records what this node's LLM calls spent (nothing without calls)."""
    if ctx.teacher is None:
        return {}
    usage = ctx.teacher.take_usage()
    if not usage:
        return {}
    return {"llm_usage": [LLMSpend(round=round_, node=node, roles=dict(sorted(usage.items())))]}


def llm_diagnosis(ctx: LoopContext, report: WeaknessReport, failures: list[ItemResult]) -> WeaknessReport:
    """The heuristic report, with the LLM's named skills and error patterns when it uses the LLM."""
    if not ctx.config.uses_llm("diagnoser") or not failures:
        return report
    teacher = _teacher(ctx)
    per_skill = ctx.config.teacher.diagnoser_examples
    with ctx.tracer.span(
        "agent", "diagnoser.openai", round=report.round, inputs={"failures": len(failures)}
    ) as sp:
        enriched, reply = teacher.run(lambda s: llm_diagnose(s, report, failures, ctx.env.skills, per_skill))
        sp.outputs = {
            "patterns": [
                {"name": p.name, "skill": p.skill, "severity": p.severity} for p in enriched.patterns
            ],
            "summary": enriched.summary,
        }
        if reply.value is None:
            sp.attrs.update(fallback="heuristic report", error=reply.error)
    return enriched


def llm_planning(ctx: LoopContext, report: WeaknessReport, previous: Plan | None) -> Plan:
    """The LLM planner's plan (policy ``llm``), or the deficit policy's when its reply is unusable."""
    teacher_cfg = ctx.config.teacher
    budget, min_share = teacher_cfg.samples_per_round, teacher_cfg.min_share
    with ctx.tracer.span("agent", "planner.llm", round=report.round + 1, inputs={"budget": budget}) as sp:
        plan, reply = _teacher(ctx).run(
            lambda s: llm_plan(s, report, ctx.env.skills, budget, min_share, previous)
        )
        if plan is None:
            sp.attrs.update(fallback=f"{FALLBACK_POLICY} policy", error=reply.error)
            fallback = plan_round(report, ctx.env.skills, budget, FALLBACK_POLICY, min_share, previous)
            plan = fallback.model_copy(
                update={
                    "allocations": [
                        a.model_copy(
                            update={"reason": f"LLM plan unusable, {FALLBACK_POLICY} policy: {a.reason}"}
                        )
                        for a in fallback.allocations
                    ]
                }
            )
        sp.outputs = [a.model_dump() for a in plan.allocations]
    return plan


def synthesis(ctx: LoopContext, plan: Plan, known: set[str]) -> tuple[list[Task], Plan]:
    """Tasks the LLM synthesizer wrote, and the plan left for the procedural generator.

    Each allocation's procedural share shrinks by the written tasks whose answers were confirmed;
    where the synthesizer failed (unusable replies), the generator makes up the difference.
    Without the LLM synthesizer: no tasks, and the whole plan.
    """
    cfg = ctx.config
    if not cfg.uses_llm("synthesizer"):
        return [], plan
    report = ctx.store.read_json(ctx.store.round(plan.round - 1).weakness, WeaknessReport)
    with ctx.tracer.span(
        "agent", "synthesizer.openai", round=plan.round, inputs={"planned": plan.total}
    ) as sp:
        result = _teacher(ctx).run(
            lambda s: synthesize(
                s,
                ctx.env,
                plan,
                report,
                cfg.teacher.synthesis,
                cfg.teacher.llm.temperature,
                cfg.teacher.oversample,
                known,
                cfg.seed,
            )
        )
        sp.outputs = result.summary()
        if result.errors:
            sp.attrs["errors"] = result.errors[:10]
    rest = plan.model_copy(
        update={
            "allocations": [
                a.model_copy(update={"n": max(0, a.n - result.confirmed.get(a.skill, 0))})
                for a in plan.allocations
            ]
        }
    )
    return result.tasks, rest


def revision(ctx: LoopContext, round_: int, tasks: list[Task]) -> RevisionOutcome:
    cfg = ctx.config
    if not cfg.uses_llm("reviser"):
        with ctx.tracer.span(
            "agent", "reviser.heuristic", round=round_, inputs={"samples": len(tasks)}
        ) as sp:
            outcome = keep_unrevised(tasks)
            sp.outputs = outcome.summary
        return outcome
    with ctx.tracer.span("agent", "reviser.openai", round=round_, inputs={"samples": len(tasks)}) as sp:
        outcome = _teacher(ctx).run(
            lambda s: revise(
                s,
                ctx.env,
                tasks,
                cfg.teacher.revision,
                cfg.teacher.synthesis,
                cfg.teacher.llm.temperature,
                round_,
                cfg.seed,
            )
        )
        sp.outputs = outcome.summary
    return outcome


def prepare_criteria(ctx: LoopContext) -> None:
    """Put the run's criteria in ``RUN_DIR/criteria/``: mined from ``teacher.criteria.pairs`` (once;
    a resumed setup reads them back) or copied from ``teacher.criteria.file``; nothing without either."""
    settings = ctx.config.teacher.criteria
    out_dir = ctx.store.root / CRITERIA_DIR
    if settings.pairs is not None:
        mine(load_pairs(settings.pairs), settings, _teacher(ctx), out_dir, ctx.config.seed)
    elif settings.file is not None:
        atomic_write_text(out_dir / REPORT_FILE, load_report(settings.file).model_dump_json(indent=2))


def criteria_check(
    ctx: LoopContext, round_: int, tasks: list[Task], criteria: CriteriaReport
) -> list[float | None]:
    """The judge LLM's criteria score of each task (``None`` where its reply was unusable)."""
    chosen = criteria.scoring_criteria
    if not chosen:  # mining dropped every criterion: nothing to judge with
        return [None] * len(tasks)
    inputs = {"samples": len(tasks), "criteria": [c.criterion.name for c in chosen]}
    with ctx.tracer.span("agent", "judge.criteria", round=round_, inputs=inputs) as sp:
        samples = [
            (t.skill, PairSample(question=t.question, solution=t.solution, answer=t.answer)) for t in tasks
        ]
        skills = {s.name: s for s in ctx.env.skills}
        scores = _teacher(ctx).run(lambda s: check_samples(s, skills, samples, chosen, round_))
        judged = [x for x in scores if x is not None]
        sp.outputs = {
            "judged": len(judged),
            "unusable": len(scores) - len(judged),
            "mean": sum(judged) / len(judged) if judged else None,
        }
    return scores
