"""The LLM planner (``teacher.brains.planner: openai``; its plans say ``policy: llm``): the
diagnoser's report becomes an allocation of the round's budget over skills, with a difficulty, the
weaknesses to target and a reason per skill.

The model proposes; the code disposes. Its allocation is validated and clamped before anyone
uses it: unknown skills are dropped, duplicates merged, counts made non-negative and scaled to the
exact budget (with the ``min_share`` floor every targeted policy keeps, so learnt skills are
rehearsed), difficulties clamped into each skill's range, and focus limited to weaknesses the
diagnoser named for that skill. Skills it left out get nothing beyond the floor.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.diagnoser import WeaknessReport
from teachloop.agents.planner import Allocation, Plan, floored, split_budget
from teachloop.environments.base import Skill
from teachloop.foundation.types import Message
from teachloop.llm.client import ChatRequest, Structured, TeacherSession
from teachloop.llm.parsing import ReplyError
from teachloop.llm.templates import render

MAX_FOCUS = 3


class AllocationReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    skill: str
    n: float = 0
    difficulty: int | None = None
    focus: list[str] = Field(default_factory=list)
    reason: str = ""


class PlanReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    allocations: list[AllocationReply] = Field(min_length=1)


def plan_prompt(
    report: WeaknessReport, skills: list[Skill], budget: int, previous: Plan | None
) -> list[Message]:
    by_name = {s.name: s for s in skills}
    last = {a.skill: a.n for a in previous.allocations} if previous else {}
    return render(
        "planner",
        budget=budget,
        skills=[
            {
                "name": w.skill,
                "description": by_name[w.skill].description,
                "accuracy": w.accuracy,
                "n": w.n,
                "change": w.change,
                "min_difficulty": by_name[w.skill].min_difficulty,
                "max_difficulty": by_name[w.skill].max_difficulty,
                "eval_difficulty": by_name[w.skill].eval_difficulty,
                "last_n": last.get(w.skill),
            }
            for w in report.skills
            if w.skill in by_name
        ],
        patterns=[
            p.model_dump(include={"name", "skill", "severity", "description"}) for p in report.patterns
        ],
        summary=report.summary,
    )


def build_plan(
    reply: PlanReply, report: WeaknessReport, skills: list[Skill], budget: int, min_share: float
) -> Plan:
    """A valid plan from the model's proposal; ReplyError when it allocates nothing usable."""
    by_lower = {s.name.lower(): s for s in skills}
    wanted: dict[str, float] = defaultdict(float)
    difficulty: dict[str, int] = {}
    focus: dict[str, list[str]] = defaultdict(list)
    reasons: dict[str, list[str]] = defaultdict(list)
    for a in reply.allocations:
        skill = by_lower.get(a.skill.strip().lower())
        if skill is None:
            continue
        wanted[skill.name] += max(0.0, a.n)
        if a.difficulty is not None and skill.name not in difficulty:
            difficulty[skill.name] = min(max(a.difficulty, skill.min_difficulty), skill.max_difficulty)
        known = {p.name.lower(): p.name for p in report.patterns_of(skill.name)}
        for f in a.focus:
            name = known.get(f.strip().lower())
            if name and name not in focus[skill.name]:
                focus[skill.name].append(name)
        if a.reason.strip():
            reasons[skill.name].append(" ".join(a.reason.split())[:300])
    if sum(wanted.values()) <= 0:
        raise ReplyError("the plan allocates no examples to any known skill")
    proposed = {s.name: wanted.get(s.name, 0.0) for s in skills}
    shares = split_budget(floored(proposed, min_share), budget)
    allocations = []
    for s in skills:
        reason = "; ".join(reasons[s.name]) or "not planned by the teacher"
        if round(proposed[s.name]) != shares[s.name]:
            reason += f" (asked {proposed[s.name]:g}, scaled to the budget of {budget} with a {min_share:.0%} floor)"
        allocations.append(
            Allocation(
                skill=s.name,
                n=shares[s.name],
                difficulty=difficulty.get(s.name, s.eval_difficulty),
                reason=reason,
                focus=focus[s.name][:MAX_FOCUS],
            )
        )
    return Plan(round=report.round + 1, policy="llm", budget=budget, allocations=allocations)


async def llm_plan(
    session: TeacherSession,
    report: WeaknessReport,
    skills: list[Skill],
    budget: int,
    min_share: float,
    previous: Plan | None,
) -> tuple[Plan | None, Structured[PlanReply]]:
    """The LLM's plan, or None (the caller falls back) when no usable plan came back."""
    request = ChatRequest(role="planner", messages=plan_prompt(report, skills, budget, previous))
    reply = await session.ask(request, PlanReply, round_=report.round + 1)
    if reply.value is None:
        return None, reply
    try:
        return build_plan(reply.value, report, skills, budget, min_share), reply
    except ReplyError as err:
        reply.error = str(err)
        return None, reply
