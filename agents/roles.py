"""The teacher's roles: each a small Protocol with a heuristic brain and an LLM brain.

A loop node reads its inputs, calls its role and writes what comes back; which brain thinks is
chosen once per run from ``teacher.brains`` (loop/brains.py). Each heuristic works offline and
opens its own agent span. Each LLM brain runs on the run's ``Teacher`` and is given its heuristic
at construction: when a reply is unusable (malformed after its repair, or a request that failed
for good) it uses what the heuristic gives for that call, and ``record_fallback`` marks its agent
span the same way for every role (``fallback``: what was used instead; ``error``: why).

| role | heuristic | LLM (``openai``) | fallback |
|---|---|---|---|
| diagnoser | ``HeuristicDiagnoser``: per-skill deficit and change | ``LLMDiagnoser``: adds named error patterns | the heuristic report |
| planner | ``HeuristicPlanner``: the ``policy`` | ``LLMPlanner``: the LLM's allocation | the ``policy``'s plan |
| task source | ``ProceduralSource``: the environment's generator | ``LLMSynthesizer``: tasks with checked answers | the generator fills the shortfall |
| reviser | ``HeuristicReviser``: no rewrites | ``LLMReviser``: CoachLM rewrites | the sample as it was |

The reviser's fallback is per sample and lives in ``agents.reviser.revise``: a sample whose rewrite
or judgement is unusable is treated as the heuristic treats every sample (kept if its answer is
confirmed). The CritiQ roles live with CritiQ: the criteria manager in criteria/agents.py, the
sample judge in criteria/scoring.py; they trace their fallbacks with the same helper.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from teachloop.agents.config import Policy, RevisionConfig, SynthesisConfig
from teachloop.agents.diagnoser import WeaknessReport, diagnose
from teachloop.agents.engine import generate_for_plan
from teachloop.agents.feedback import FeedbackView
from teachloop.agents.llm_diagnoser import llm_diagnose
from teachloop.agents.llm_planner import llm_plan
from teachloop.agents.planner import Plan, plan_round
from teachloop.agents.reviser import RevisionOutcome, keep_unrevised, revise
from teachloop.agents.synthesizer import synthesize
from teachloop.environments.base import Environment, Skill, Task, normalize_question
from teachloop.evals.metrics import ItemResult
from teachloop.llm.client import Teacher
from teachloop.tracing.spans import SpanHandle, Tracer


def record_fallback(span: SpanHandle | None, what: str, error: str | None) -> None:
    """Mark ``span``: an LLM brain used ``what`` instead of its reply, because of ``error``.
    A span that saw several fallbacks keeps the last one and counts them (``fallbacks``)."""
    if span is None:
        return
    span.attrs["fallback"] = what
    span.attrs["error"] = error or "unusable reply"
    span.attrs["fallbacks"] = int(span.attrs.get("fallbacks", 0)) + 1


# -- diagnoser ----------------------------------------------------------------------------------


class Diagnoser(Protocol):
    """A dev evaluation as the teacher sees it (and the previous one) -> a weakness report."""

    def diagnose(
        self, view: FeedbackView, previous: FeedbackView | None, failures: list[ItemResult]
    ) -> WeaknessReport: ...


class HeuristicDiagnoser:
    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def diagnose(
        self, view: FeedbackView, previous: FeedbackView | None, failures: list[ItemResult]
    ) -> WeaknessReport:
        inputs = {
            "feedback": view.level,
            "dev_accuracy": {k: m.accuracy for k, m in view.skills.items()} or view.accuracy,
            "failures": len(view.failures),
            "compared_with_round": previous.round if previous else None,
        }
        with self.tracer.span("agent", "diagnoser.heuristic", inputs=inputs) as sp:
            report = diagnose(view, previous)
            sp.outputs = {
                "summary": report.summary,
                "skills": [
                    {"skill": w.skill, "accuracy": w.accuracy, "change": w.change, "severity": w.severity}
                    for w in report.skills
                ],
            }
        return report


class LLMDiagnoser:
    """The heuristic report (what was measured), with the LLM's named skills and error patterns
    added from the failures and the student's answers."""

    def __init__(
        self, teacher: Teacher, skills: list[Skill], per_skill: int, tracer: Tracer, fallback: Diagnoser
    ) -> None:
        self.teacher = teacher
        self.skills = skills
        self.per_skill = per_skill
        self.tracer = tracer
        self.fallback = fallback

    def diagnose(
        self, view: FeedbackView, previous: FeedbackView | None, failures: list[ItemResult]
    ) -> WeaknessReport:
        report = self.fallback.diagnose(view, previous, failures)
        if not failures:
            return report
        with self.tracer.span(
            "agent", "diagnoser.openai", round=report.round, inputs={"failures": len(failures)}
        ) as sp:
            enriched, reply = self.teacher.run(
                lambda s: llm_diagnose(s, report, failures, self.skills, self.per_skill)
            )
            sp.outputs = {
                "patterns": [
                    {"name": p.name, "skill": p.skill, "severity": p.severity} for p in enriched.patterns
                ],
                "summary": enriched.summary,
            }
            if reply.value is None:
                record_fallback(sp, "heuristic report", reply.error)
        return enriched


# -- planner ------------------------------------------------------------------------------------


class Planner(Protocol):
    """The weakness report (and the last round's plan) -> this round's allocation of the budget."""

    def plan(self, report: WeaknessReport, previous: Plan | None) -> Plan: ...


class HeuristicPlanner:
    def __init__(
        self, policy: Policy, skills: list[Skill], budget: int, min_share: float, tracer: Tracer
    ) -> None:
        self.policy: Policy = policy
        self.skills = skills
        self.budget = budget
        self.min_share = min_share
        self.tracer = tracer

    def plan(self, report: WeaknessReport, previous: Plan | None) -> Plan:
        inputs = {"weakness": report.summary, "budget": self.budget, "min_share": self.min_share}
        with self.tracer.span("agent", f"planner.{self.policy}", inputs=inputs) as sp:
            plan = plan_round(report, self.skills, self.budget, self.policy, self.min_share, previous)
            sp.outputs = [a.model_dump() for a in plan.allocations]
        return plan


class LLMPlanner:
    """The LLM's allocation, validated and clamped (agents/llm_planner.py); the fallback's plan,
    each reason saying so, when the reply is unusable."""

    def __init__(
        self,
        teacher: Teacher,
        skills: list[Skill],
        budget: int,
        min_share: float,
        tracer: Tracer,
        fallback: Planner,
    ) -> None:
        self.teacher = teacher
        self.skills = skills
        self.budget = budget
        self.min_share = min_share
        self.tracer = tracer
        self.fallback = fallback

    def plan(self, report: WeaknessReport, previous: Plan | None) -> Plan:
        inputs = {"budget": self.budget}
        with self.tracer.span("agent", "planner.llm", round=report.round + 1, inputs=inputs) as sp:
            plan, reply = self.teacher.run(
                lambda s: llm_plan(s, report, self.skills, self.budget, self.min_share, previous)
            )
            if plan is None:
                fallback = self.fallback.plan(report, previous)
                record_fallback(sp, f"{fallback.policy} policy", reply.error)
                because = f"LLM plan unusable, {fallback.policy} policy"
                plan = fallback.model_copy(
                    update={
                        "allocations": [
                            a.model_copy(update={"reason": f"{because}: {a.reason}"})
                            for a in fallback.allocations
                        ]
                    }
                )
            sp.outputs = [a.model_dump() for a in plan.allocations]
        return plan


# -- task source (generate) ---------------------------------------------------------------------


class TaskSource(Protocol):
    """A plan -> candidate training tasks, none of whose questions is in ``known``."""

    def tasks(self, plan: Plan, report: WeaknessReport, known: set[str]) -> list[Task]: ...


class ProceduralSource:
    """The environment's own generator (verified gold answers); the heuristic engine."""

    def __init__(self, env: Environment, seed: int, oversample: float, tracer: Tracer) -> None:
        self.env = env
        self.seed = seed
        self.oversample = oversample
        self.tracer = tracer

    def tasks(self, plan: Plan, report: WeaknessReport, known: set[str]) -> list[Task]:
        inputs = {"planned": {a.skill: a.n for a in plan.allocations}, "oversample": self.oversample}
        with self.tracer.span("agent", "engine.heuristic", inputs=inputs) as sp:
            tasks = generate_for_plan(self.env, plan, self.seed, self.oversample, known, self.tracer)
            sp.outputs = {"generated": len(tasks), "by_skill": dict(Counter(t.skill for t in tasks))}
        return tasks


class LLMSynthesizer:
    """Tasks the LLM wrote, then the fallback's for the rest of the plan: each allocation shrinks
    by the written tasks whose answers were confirmed, so where the synthesizer failed (unusable
    replies, unconfirmed answers) the generator makes up the difference. ``fallback`` is None for
    an environment without a generator: then everything comes from the LLM."""

    def __init__(
        self,
        teacher: Teacher,
        env: Environment,
        settings: SynthesisConfig,
        temperature: float,
        oversample: float,
        seed: int,
        tracer: Tracer,
        fallback: TaskSource | None,
    ) -> None:
        self.teacher = teacher
        self.env = env
        self.settings = settings
        self.temperature = temperature
        self.oversample = oversample
        self.seed = seed
        self.tracer = tracer
        self.fallback = fallback

    def tasks(self, plan: Plan, report: WeaknessReport, known: set[str]) -> list[Task]:
        inputs = {"planned": plan.total}
        with self.tracer.span("agent", "synthesizer.openai", round=plan.round, inputs=inputs) as sp:
            result = self.teacher.run(
                lambda s: synthesize(
                    s,
                    self.env,
                    plan,
                    report,
                    self.settings,
                    self.temperature,
                    self.oversample,
                    known,
                    self.seed,
                )
            )
            sp.outputs = result.summary()
            if result.errors:
                sp.attrs["errors"] = result.errors[:10]
                if self.fallback is not None:
                    record_fallback(sp, "procedural generator", result.errors[0])
        if self.fallback is None:
            return result.tasks
        rest = plan.model_copy(
            update={
                "allocations": [
                    a.model_copy(update={"n": max(0, a.n - result.confirmed.get(a.skill, 0))})
                    for a in plan.allocations
                ]
            }
        )
        seen = known | {normalize_question(t.question) for t in result.tasks}
        return result.tasks + self.fallback.tasks(rest, report, seen)


# -- reviser ------------------------------------------------------------------------------------


class Reviser(Protocol):
    """A round's generated tasks -> the tasks to score, with a record of every revision attempt."""

    def revise(self, round_: int, tasks: list[Task]) -> RevisionOutcome: ...


class HeuristicReviser:
    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def revise(self, round_: int, tasks: list[Task]) -> RevisionOutcome:
        inputs = {"samples": len(tasks)}
        with self.tracer.span("agent", "reviser.heuristic", round=round_, inputs=inputs) as sp:
            outcome = keep_unrevised(tasks)
            sp.outputs = outcome.summary
        return outcome


class LLMReviser:
    """CoachLM: weak samples rewritten, a rewrite kept only when a judge trusts it and it passes a
    check; a sample whose rewrite was unusable stays as the heuristic leaves it."""

    def __init__(
        self,
        teacher: Teacher,
        env: Environment,
        settings: RevisionConfig,
        synthesis: SynthesisConfig,
        temperature: float,
        seed: int,
        tracer: Tracer,
    ) -> None:
        self.teacher = teacher
        self.env = env
        self.settings = settings
        self.synthesis = synthesis
        self.temperature = temperature
        self.seed = seed
        self.tracer = tracer

    def revise(self, round_: int, tasks: list[Task]) -> RevisionOutcome:
        inputs = {"samples": len(tasks)}
        with self.tracer.span("agent", "reviser.openai", round=round_, inputs=inputs) as sp:
            outcome = self.teacher.run(
                lambda s: revise(
                    s,
                    self.env,
                    tasks,
                    self.settings,
                    self.synthesis,
                    self.temperature,
                    round_,
                    self.seed,
                )
            )
            sp.outputs = outcome.summary
            # a rewrite or a judgement that came back unusable (not one that changed nothing)
            errors = [r.error for r in outcome.records if r.error and r.judge_verdict is None]
            if errors:
                record_fallback(sp, "unrevised samples", errors[0])
        return outcome
