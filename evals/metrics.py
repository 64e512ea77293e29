"""Accuracy with counts and 95% intervals, per skill and overall.

Accuracy counts items the verifier fully accepts (reward 1); partial credit is reported
separately as the mean reward. Intervals are Wilson score intervals, which stay sensible at 0%
and 100% with the few dozen items per skill a CPU run can afford.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from teachloop.environments.base import Split

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


class ItemResult(BaseModel):
    """One evaluated item: what the student said and what the verifier made of it."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    skill: str
    question: str
    answer: str
    completion: str
    parsed_answer: str | None
    reward: float
    feedback: str

    @property
    def solved(self) -> bool:
        return self.reward >= 1.0


class SkillMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    skill: str
    n: int
    solved: int
    accuracy: float
    ci_low: float
    ci_high: float
    mean_reward: float


class EvalSummary(BaseModel):
    """The numbers of one evaluation of one split; ``overall`` pools every item."""

    model_config = ConfigDict(frozen=True)

    round: int
    split: Split
    overall: SkillMetrics
    skills: dict[str, SkillMetrics]

    @property
    def skill_mean(self) -> float:
        """Accuracy averaged over skills (equal to ``overall`` when skills have equal counts)."""
        return sum(m.accuracy for m in self.skills.values()) / max(1, len(self.skills))


def skill_metrics(skill: str, results: Iterable[ItemResult]) -> SkillMetrics:
    items = list(results)
    n = len(items)
    solved = sum(r.solved for r in items)
    low, high = wilson_interval(solved, n)
    return SkillMetrics(
        skill=skill,
        n=n,
        solved=solved,
        accuracy=solved / n if n else 0.0,
        ci_low=low,
        ci_high=high,
        mean_reward=sum(r.reward for r in items) / n if n else 0.0,
    )


def summarize(round_: int, split: Split, results: list[ItemResult]) -> EvalSummary:
    by_skill: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        by_skill[r.skill].append(r)
    return EvalSummary(
        round=round_,
        split=split,
        overall=skill_metrics("all", results),
        skills={s: skill_metrics(s, by_skill[s]) for s in sorted(by_skill)},
    )
