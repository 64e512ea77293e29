"""What the teacher is shown of an evaluation: DataEnvGym's three levels of feedback.

The same environment can present its results to the teacher at three levels of structure
(config ``teacher.feedback``):

- ``open_ended``: the student's errors (question, gold answer, the student's answer, the
  verifier's feedback) and the overall accuracy, with no skill tags: the teacher has to work out
  what the student is bad at (DataEnvGym's open-ended environment);
- ``skill_list`` (the default): accuracy per skill, and the errors tagged with their skill;
- ``skill_tree``: the skill list plus a grouping of the skills into parent skills with their
  pooled accuracy. An environment can declare its tree (``SkillTree``); otherwise a skill named
  ``parent:child`` or ``parent/child`` sits under ``parent``, and any other under ``all``.

The view is written to ``rounds/<k>/feedback.json``, so a user sees exactly what the teacher saw.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.config import FeedbackLevel
from teachloop.environments.base import Environment, SkillTree
from teachloop.evals.metrics import EvalSummary, ItemResult, SkillMetrics

ROOT_GROUP = "all"


class FailureView(BaseModel):
    model_config = ConfigDict(frozen=True)

    question: str
    expected: str
    got: str
    feedback: str
    skill: str | None = Field(None, description="None at the open-ended level")


class SkillGroup(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    skills: list[str]
    accuracy: float
    n: int


class FeedbackView(BaseModel):
    """One dev evaluation as the teacher sees it at a given level."""

    model_config = ConfigDict(frozen=True)

    level: FeedbackLevel
    round: int
    accuracy: float
    n: int
    skills: dict[str, SkillMetrics] = Field(default_factory=dict, description="empty at the open-ended level")
    groups: list[SkillGroup] = Field(default_factory=list, description="only at the skill-tree level")
    failures: list[FailureView] = Field(default_factory=list)


def skill_tree(env: Environment) -> dict[str, list[str]]:
    """Parent skill -> its skills: the environment's own tree, or one read from the skill names."""
    names = [s.name for s in env.skills]
    if isinstance(env, SkillTree):
        return env.skill_groups()
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        sep = next((s for s in (":", "/") if s in name), None)
        groups[name.split(sep, 1)[0] if sep else ROOT_GROUP].append(name)
    return dict(groups)


def _group(name: str, skills: list[str], metrics: dict[str, SkillMetrics]) -> SkillGroup:
    present = [metrics[s] for s in skills if s in metrics]
    n = sum(m.n for m in present)
    solved = sum(m.solved for m in present)
    return SkillGroup(name=name, skills=skills, accuracy=solved / n if n else 0.0, n=n)


def feedback_view(
    level: FeedbackLevel,
    evaluation: EvalSummary,
    results: list[ItemResult],
    tree: dict[str, list[str]] | None = None,
) -> FeedbackView:
    """The teacher's view of ``evaluation`` (``results`` are its items; failures are taken from them)."""
    tagged = level != "open_ended"
    failures = [
        FailureView(
            question=r.question,
            expected=r.answer,
            got=r.completion,
            feedback=r.feedback,
            skill=r.skill if tagged else None,
        )
        for r in results
        if not r.solved
    ]
    groups = (
        [_group(name, skills, evaluation.skills) for name, skills in (tree or {}).items()]
        if level == "skill_tree"
        else []
    )
    return FeedbackView(
        level=level,
        round=evaluation.round,
        accuracy=evaluation.overall.accuracy,
        n=evaluation.overall.n,
        skills=dict(evaluation.skills) if tagged else {},
        groups=groups,
        failures=failures,
    )
