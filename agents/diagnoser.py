"""Diagnose: turn the teacher's view of an evaluation into a weakness report the planner can act on.

The heuristic brain reads what the feedback level shows (``environments/feedback.py``). With
skills (skill list or tree): per-skill dev accuracy, the deficit (how far from solved), the change
since the previous round (learning progress, negative when a skill was forgotten), and a few
failures with the student's own answers as evidence; with a tree, the same per parent skill.
Open-ended feedback names no skills, so the report holds the overall accuracy and untagged
failures, and the planner falls back to the environment's skill list.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.config import FeedbackLevel
from teachloop.agents.feedback import FailureView, FeedbackView

Severity = Literal["high", "medium", "low"]
EXAMPLES_PER_SKILL = 3
OPEN_ENDED_EXAMPLES = 10


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


class GroupWeakness(BaseModel):
    """A parent skill of the skill tree, with its pooled accuracy."""

    model_config = ConfigDict(frozen=True)

    group: str
    skills: list[str]
    accuracy: float
    n: int
    change: float | None = None
    severity: Severity


class WeaknessReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    round: int
    skills: list[SkillWeakness]
    summary: str = ""
    patterns: list[ErrorPattern] = Field(
        default_factory=list, description="named skills and error patterns (LLM diagnoser only)"
    )
    brain: str = "heuristic"

    level: FeedbackLevel = "skill_list"
    accuracy: float | None = Field(None, description="overall dev accuracy")
    groups: list[GroupWeakness] = Field(default_factory=list, description="skill-tree level only")
    evidence: list[FailureExample] = Field(default_factory=list, description="untagged failures (open-ended)")

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


def _example(f: FailureView) -> FailureExample:
    return FailureExample(question=f.question, expected=f.expected, got=f.got, feedback=f.feedback)


def diagnose(current: FeedbackView, previous: FeedbackView | None = None) -> WeaknessReport:
    weaknesses = []
    for skill, metrics in current.skills.items():
        before = previous.skills.get(skill) if previous else None
        evidence = [_example(f) for f in current.failures if f.skill == skill][:EXAMPLES_PER_SKILL]
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
    earlier = {g.name: g for g in previous.groups} if previous else {}
    groups = sorted(
        (
            GroupWeakness(
                group=g.name,
                skills=g.skills,
                accuracy=g.accuracy,
                n=g.n,
                change=g.accuracy - earlier[g.name].accuracy if g.name in earlier else None,
                severity=_severity(g.accuracy),
            )
            for g in current.groups
        ),
        key=lambda g: (g.accuracy, g.group),
    )
    if weaknesses:
        summary = "weakest: " + ", ".join(f"{w.skill} {w.accuracy:.0%}" for w in weaknesses[:3])
    else:
        summary = (
            f"overall {current.accuracy:.0%} of {current.n}; {len(current.failures)} failures, no skill tags"
        )
    if groups:
        summary += "; weakest group: " + ", ".join(f"{g.group} {g.accuracy:.0%}" for g in groups[:2])
    return WeaknessReport(
        round=current.round,
        skills=weaknesses,
        summary=summary,
        level=current.level,
        accuracy=current.accuracy,
        groups=groups,
        evidence=[] if weaknesses else [_example(f) for f in current.failures[:OPEN_ENDED_EXAMPLES]],
    )
