"""Review gates: a person looks at a round's plan or selected data before it costs a training round,
and approves it, edits it, or rejects samples.

A decision is a frozen model with who and when; applying it is a pure function of the plan or the
selection, so the loop node that applies it (``loop/nodes/review.py``) can run again after a crash
and produce the same files. What a person changed is training signal too: an edited answer is a
CoachLM revision (original -> corrected) and a preference pair (corrected over original), and a
rejected sample loses a preference pair against a kept sample of its skill
(``criteria/pairs.py`` ``review_pairs``, the format ``criteria mine --pairs`` reads).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.config import Gate
from teachloop.agents.planner import Plan, split_budget
from teachloop.environments.base import Skill, Task
from teachloop.foundation.errors import ConfigError

if TYPE_CHECKING:  # both import the LLM client (openai), which reading a run does not need
    from teachloop.agents.reviser import RevisionRecord
    from teachloop.agents.selector import SelectedSample

GATES: tuple[Gate, ...] = ("plan", "data")
#: What a sample's review outcome can be (exported per row; ``inspect samples --review``).
ReviewOutcome = Literal["not_reviewed", "approved", "edited", "rejected"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanEdit(_Frozen):
    """Changes to a plan; unset fields keep the planner's choice."""

    budget: int | None = Field(
        None, ge=1, description="total samples of the round, split as the plan split them"
    )
    skills: list[str] | None = Field(None, description="keep only these skills (their shares are rescaled)")
    levels: dict[str, int] = Field(default_factory=dict, description="skill -> difficulty level")


class AnswerEdit(_Frozen):
    task_id: str
    answer: str = Field(min_length=1)


class ReviewDecision(_Frozen):
    """What a reviewer decided at one gate of one round."""

    gate: Gate
    round: int
    reviewer: str
    decided_at: str = Field(description="UTC time, ISO 8601")
    plan: PlanEdit | None = None
    reject: list[str] = Field(default_factory=list, description="task ids of samples not to train on")
    edits: list[AnswerEdit] = Field(default_factory=list)
    note: str = ""

    @property
    def approved_as_is(self) -> bool:
        return self.plan is None and not self.reject and not self.edits


class EditedSample(_Frozen):
    before: Task
    after: Task


class ReviewRecord(_Frozen):
    """``rounds/<k>/review_<gate>.json``: the decision, and once the run applied it, its effect."""

    decision: ReviewDecision
    applied: bool = False
    plan_before: Plan | None = None
    plan_after: Plan | None = None
    rejected: list[Task] = Field(default_factory=list)
    edited: list[EditedSample] = Field(default_factory=list)

    def outcome(self, task_id: str) -> ReviewOutcome:
        if any(t.id == task_id for t in self.rejected):
            return "rejected"
        if any(e.after.id == task_id for e in self.edited):
            return "edited"
        return "approved"


def edited_plan(plan: Plan, edit: PlanEdit, levels: dict[str, tuple[int, int]]) -> Plan:
    """``plan`` with the reviewer's budget, skills and levels; ``levels`` is each environment
    skill's (lowest, highest) difficulty. Bad edits raise a ConfigError naming what is wrong."""
    planned = [a.skill for a in plan.allocations]
    keep = edit.skills if edit.skills is not None else planned
    unknown = [s for s in [*keep, *edit.levels] if s not in planned]
    if unknown:
        raise ConfigError(
            f"skill {unknown[0]!r} is not in round {plan.round}'s plan; planned: {', '.join(planned)}"
        )
    if not keep:
        raise ConfigError("a plan needs at least one skill")
    for skill, level in edit.levels.items():
        low, high = levels.get(skill, (level, level))
        if not low <= level <= high:
            raise ConfigError(f"level {level} of {skill} is outside its range {low}..{high}")
    chosen = [a for a in plan.allocations if a.skill in keep]
    budget = edit.budget if edit.budget is not None else sum(a.n for a in chosen)
    shares = split_budget({a.skill: float(a.n) for a in chosen}, budget)
    allocations = [
        a.model_copy(
            update={
                "n": shares[a.skill],
                "difficulty": edit.levels.get(a.skill, a.difficulty),
                "reason": f"{a.reason}; edited by a reviewer",
            }
        )
        for a in chosen
    ]
    return plan.model_copy(update={"budget": budget, "allocations": allocations})


def check_sample_ids(decision: ReviewDecision, selected: list[SelectedSample]) -> None:
    """Every id a decision names must be a selected sample of its round."""
    known = {s.task.id for s in selected}
    for task_id in [*decision.reject, *(e.task_id for e in decision.edits)]:
        if task_id not in known:
            raise ConfigError(f"no selected sample {task_id!r} in round {decision.round}")
    both = set(decision.reject) & {e.task_id for e in decision.edits}
    if both:
        raise ConfigError(f"sample {sorted(both)[0]!r} is both rejected and edited")


def reviewed_selection(
    decision: ReviewDecision, selected: list[SelectedSample]
) -> tuple[list[SelectedSample], ReviewRecord]:
    """The selection without rejected samples and with edited answers (same task id, the original
    answer kept as ``original_answer`` so reports show the edit as a diff), and the record."""
    check_sample_ids(decision, selected)
    answers = {e.task_id: e.answer for e in decision.edits}
    rejected = set(decision.reject)
    kept: list[SelectedSample] = []
    edited: list[EditedSample] = []
    for s in selected:
        if s.task.id in rejected:
            continue
        if s.task.id in answers and answers[s.task.id] != s.task.answer:
            after = s.task.model_copy(
                update={
                    "answer": answers[s.task.id],
                    "original_answer": s.task.original_answer or s.task.answer,
                    "original_question": s.task.original_question or s.task.question,
                }
            )
            edited.append(EditedSample(before=s.task, after=after))
            s = s.model_copy(update={"task": after})
        kept.append(s)
    record = ReviewRecord(
        decision=decision,
        applied=True,
        rejected=[s.task for s in selected if s.task.id in rejected],
        edited=edited,
    )
    return kept, record


def reviewer_revision(edit: EditedSample, skill: Skill, decision: ReviewDecision) -> RevisionRecord:
    """A reviewer's answer edit as a kept CoachLM revision: ``reviser train`` learns from it as
    from a revision the judge trusted (the prompt is the reviser's, on the original sample)."""
    from teachloop.agents.reviser import RevisionRecord, revision_prompt  # the LLM client: only when used

    before, after = edit.before, edit.after
    reasons = ["a reviewer corrected the answer"]
    return RevisionRecord(
        round=decision.round,
        task_id=before.id,
        skill=before.skill,
        source=before.source,
        weak_reasons=reasons,
        original_question=before.question,
        original_solution=before.solution,
        original_answer=before.answer,
        prompt=revision_prompt(before, reasons, skill, []),
        revised_task_id=after.id,
        revised_question=after.question,
        revised_solution=after.solution,
        revised_answer=after.answer,
        problems_fixed=[f"answer corrected by reviewer {decision.reviewer}"],
        judge_verdict="revised",
        judge_confidence=1.0,
        judge_reason=decision.note or f"edited by reviewer {decision.reviewer}",
        check_passed=True,
        kept=True,
    )
