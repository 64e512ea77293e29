"""Plan: split a round's data budget over skills, pick each skill's difficulty and trainer.

Policies:
- ``uniform``: the same share for every skill (the baseline any targeting must beat);
- ``deficit``: shares proportional to 1 - dev accuracy, with a floor (``min_share``) so a skill
  the student has learnt keeps being rehearsed instead of being forgotten in the next round.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.diagnoser import WeaknessReport
from teachloop.core.config import Policy
from teachloop.environments.base import Skill

Trainer = Literal["sft"]


class Allocation(BaseModel):
    model_config = ConfigDict(frozen=True)

    skill: str
    n: int = Field(ge=0)
    difficulty: int
    trainer: Trainer = "sft"
    reason: str


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    round: int
    policy: str
    budget: int
    allocations: list[Allocation]

    @property
    def total(self) -> int:
        return sum(a.n for a in self.allocations)


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


def policy_weights(report: WeaknessReport, policy: Policy, min_share: float) -> dict[str, float]:
    names = [w.skill for w in report.skills]
    if policy == "uniform":
        return {n: 1.0 for n in names}
    deficits = {w.skill: w.deficit for w in report.skills}
    floor = min(min_share, 1.0 / len(names))
    spread = 1.0 - floor * len(names)
    total = sum(deficits.values())
    if total <= 0:
        return {n: 1.0 for n in names}
    return {n: floor + spread * deficits[n] / total for n in names}


def plan_round(
    report: WeaknessReport, skills: list[Skill], budget: int, policy: Policy, min_share: float
) -> Plan:
    by_name = {s.name: s for s in skills}
    weights = policy_weights(report, policy, min_share)
    shares = split_budget(weights, budget)
    allocations = []
    for weakness in report.skills:
        skill = by_name[weakness.skill]
        if policy == "uniform":
            reason = "uniform split"
        else:
            reason = f"dev accuracy {weakness.accuracy:.0%} (deficit {weakness.deficit:.2f})"
            if weakness.change is not None:
                reason += f", {weakness.change:+.0%} since last round"
        allocations.append(
            Allocation(
                skill=skill.name,
                n=shares[skill.name],
                difficulty=skill.eval_difficulty,
                reason=reason,
            )
        )
    return Plan(round=report.round + 1, policy=policy, budget=budget, allocations=allocations)
