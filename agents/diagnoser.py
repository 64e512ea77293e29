"""Diagnose: turn an evaluation into a weakness report the planner can act on.

The heuristic brain reads per-skill dev accuracy: the deficit (how far from solved), the change
since the previous round (learning progress, negative when a skill was forgotten), and a few
failures with the student's own answers as evidence.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.evals.metrics import EvalSummary, ItemResult

Severity = Literal["high", "medium", "low"]
EXAMPLES_PER_SKILL = 3


class FailureExample(BaseModel):
    model_config = ConfigDict(frozen=True)

    question: str
    expected: str
    got: str
    task_id: str = ""
    feedback: str = ""


class SkillWeakness(BaseModel):
    model_config = ConfigDict(frozen=True)

    skill: str
    accuracy: float
    n: int
    deficit: float = Field(ge=0, le=1)
    change: float | None = Field(None, description="accuracy change since the previous round")
    severity: Severity
    evidence: list[FailureExample] = Field(default_factory=list)


class ErrorPattern(BaseModel):
    """A named weakness an LLM found by reading failures: a finer skill or a kind of error.

    It belongs to one environment skill (tasks stay scorable), and may name a sub-skill the
    environment never tagged, so environments with one untagged skill still get a skill map.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    skill: str
    description: str
    severity: Severity
    evidence: list[FailureExample] = Field(default_factory=list)


class WeaknessReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    round: int
    skills: list[SkillWeakness]
    summary: str = ""
    patterns: list[ErrorPattern] = Field(
        default_factory=list, description="named skills and error patterns (LLM diagnoser only)"
    )
    brain: str = "heuristic"

    def patterns_of(self, skill: str) -> list[ErrorPattern]:
        return [p for p in self.patterns if p.skill == skill]

    def weakness(self, skill: str) -> SkillWeakness | None:
        return next((w for w in self.skills if w.skill == skill), None)


def _severity(accuracy: float) -> Severity:
    if accuracy < 0.4:
        return "high"
    if accuracy < 0.8:
        return "medium"
    return "low"


def diagnose(
    current: EvalSummary, previous: EvalSummary | None, failures: list[ItemResult]
) -> WeaknessReport:
    weaknesses = []
    for skill, metrics in current.skills.items():
        before = previous.skills.get(skill) if previous else None
        evidence = [
            FailureExample(
                question=f.question,
                expected=f.answer,
                got=f.completion,
                task_id=f.task_id,
                feedback=f.feedback,
            )
            for f in failures
            if f.skill == skill
        ][:EXAMPLES_PER_SKILL]
        weaknesses.append(
            SkillWeakness(
                skill=skill,
                accuracy=metrics.accuracy,
                n=metrics.n,
                deficit=1.0 - metrics.accuracy,
                change=None if before is None else metrics.accuracy - before.accuracy,
                severity=_severity(metrics.accuracy),
                evidence=evidence,
            )
        )
    weaknesses.sort(key=lambda w: (-w.deficit, w.skill))
    worst = ", ".join(f"{w.skill} {w.accuracy:.0%}" for w in weaknesses[:3])
    return WeaknessReport(round=current.round, skills=weaknesses, summary=f"weakest: {worst}")
