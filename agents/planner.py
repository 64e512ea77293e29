"""Plan: split a round's data budget over skills, pick each skill's difficulty and trainer.

Policies:
- ``uniform``: the same share for every skill (the baseline any targeting must beat);
- ``deficit``: shares proportional to 1 - dev accuracy;
- ``bandit``: learning progress — shares proportional to how far each skill's dev accuracy moved
  per training example in the last round (up or down: a skill being forgotten needs data as
  much as one being learnt), with a share of the unsolved part kept for exploration, so that a
  skill that has not been tried enough is not written off. Its first round, with no progress
  measured yet, is uniform.
- ``curriculum``: learning progress per (skill, level), with each skill's level at the student's
  frontier (agents/curriculum.py). Its measurements come from the loop's frontier node; here,
  without them (the first round, or as an LLM planner's fallback), it is uniform at the
  evaluation levels.
Targeted policies keep a floor (``min_share``) per skill so a skill the student has learnt keeps
being rehearsed instead of being forgotten in the next round.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.config import Policy
from teachloop.agents.diagnoser import SkillWeakness, WeaknessReport
from teachloop.environments.base import Skill
from teachloop.training.config import Trainer


class Allocation(BaseModel):
    model_config = ConfigDict(frozen=True)

    skill: str
    n: int = Field(ge=0)
    difficulty: int
    trainer: Trainer = "sft"
    reason: str
    focus: list[str] = Field(
        default_factory=list, description="error patterns within the skill the new data should target"
    )


class Shortfall(BaseModel):
    """A skill whose planned samples the task source could not all make: a fixed pool used up, a
    generator with few distinct tasks at that level, teacher LLM requests that failed."""

    model_config = ConfigDict(frozen=True)

    skill: str
    planned: int
    made: int


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    round: int
    policy: str
    budget: int
    allocations: list[Allocation]
    shortfalls: list[Shortfall] = Field(
        default_factory=list, description="skills the generate step could not fill (written after it ran)"
    )

    @property
    def total(self) -> int:
        return sum(a.n for a in self.allocations)


def shortfalls(plan: Plan, made: Counter[str]) -> list[Shortfall]:
    """The allocations that ``made`` (tasks made per skill) leaves short."""
    return [
        Shortfall(skill=a.skill, planned=a.n, made=made[a.skill])
        for a in plan.allocations
        if made[a.skill] < a.n
    ]


def split_budget(weights: dict[str, float], budget: int) -> dict[str, int]:
    """Integer shares of ``budget`` proportional to ``weights`` (largest remainder; ties by name)."""
    total = sum(weights.values())
    if total <= 0:
        weights = {k: 1.0 for k in weights}
        total = float(len(weights))
    exact = {k: budget * w / total for k, w in weights.items()}
    shares = {k: int(v) for k, v in exact.items()}
    left = budget - sum(shares.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - shares[k]), k))[:left]:
        shares[k] += 1
    return shares


#: Part of the bandit's weight given to the deficit, so unmeasured or stalled skills are re-tried.
EXPLORATION = 0.2


def floored(raw: dict[str, float], min_share: float) -> dict[str, float]:
    """Normalise ``raw`` to shares, each at least ``min_share`` (uniform if all are zero)."""
    total = sum(raw.values())
    if total <= 0:
        return {n: 1.0 for n in raw}
    floor = min(min_share, 1.0 / len(raw))
    spread = 1.0 - floor * len(raw)
    return {n: floor + spread * v / total for n, v in raw.items()}


def learning_progress(report: WeaknessReport, previous: Plan | None) -> dict[str, float] | None:
    """Absolute dev accuracy change per 100 training examples of the last round, per skill."""
    if previous is None or any(w.change is None for w in report.skills):
        return None
    given = {a.skill: a.n for a in previous.allocations}
    return {w.skill: 100 * abs(w.change or 0.0) / max(given.get(w.skill, 0), 1) for w in report.skills}


def policy_weights(
    report: WeaknessReport, policy: Policy, min_share: float, previous: Plan | None = None
) -> dict[str, float]:
    names = [w.skill for w in report.skills]
    if policy in ("uniform", "curriculum"):  # curriculum: re-split by agents.curriculum.apply_curriculum
        return {n: 1.0 for n in names}
    if policy == "deficit":
        return floored({w.skill: w.deficit for w in report.skills}, min_share)
    progress = learning_progress(report, previous)
    if progress is None:
        return {n: 1.0 for n in names}
    total = sum(progress.values()) or 1.0
    deficit_total = sum(w.deficit for w in report.skills) or 1.0
    raw = {
        w.skill: (1 - EXPLORATION) * progress[w.skill] / total + EXPLORATION * w.deficit / deficit_total
        for w in report.skills
    }
    return floored(raw, min_share)


def _reason(policy: Policy, weakness: SkillWeakness, progress: dict[str, float] | None) -> str:
    if policy == "uniform":
        return "uniform split"
    if policy == "curriculum":
        return "uniform split (no levels measured)"
    reason = f"dev accuracy {weakness.accuracy:.0%} (deficit {weakness.deficit:.2f})"
    if weakness.change is not None:
        reason += f", {weakness.change:+.0%} since last round"
    if policy == "bandit":
        reason += (
            f", progress {progress[weakness.skill]:.2f} points per 100 examples"
            if progress
            else ", no progress measured yet: uniform"
        )
    return reason


def plan_round(
    report: WeaknessReport,
    skills: list[Skill],
    budget: int,
    policy: Policy,
    min_share: float,
    previous: Plan | None = None,
) -> Plan:
    """``previous`` is the last round's plan (the bandit needs what each skill was given)."""
    if not report.skills:  # open-ended feedback names no skills: spread over what the generator offers
        even = split_budget({s.name: 1.0 for s in skills}, budget)
        allocations = [
            Allocation(
                skill=s.name,
                n=even[s.name],
                difficulty=s.eval_difficulty,
                reason="open-ended feedback names no skills: uniform over the environment's skills",
            )
            for s in skills
        ]
        return Plan(round=report.round + 1, policy=policy, budget=budget, allocations=allocations)
    by_name = {s.name: s for s in skills}
    shares = split_budget(policy_weights(report, policy, min_share, previous), budget)
    progress = learning_progress(report, previous)
    allocations = []
    for weakness in report.skills:
        skill = by_name[weakness.skill]
        allocations.append(
            Allocation(
                skill=skill.name,
                n=shares[skill.name],
                difficulty=skill.eval_difficulty,
                reason=_reason(policy, weakness, progress),
            )
        )
    return Plan(round=report.round + 1, policy=policy, budget=budget, allocations=allocations)
