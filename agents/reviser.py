"""The reviser (CoachLM): rewrite weak training samples instead of dropping them.

Which samples are weak is decided without a model (``weak_reasons``): a gold answer the verifier
rejects, a teacher-written answer nobody confirmed, an answer that is more than the final answer,
a question too short to be clear, a teacher task without a worked solution. With ``scope: all``
every sample is offered, as CoachLM revises a whole dataset.

A revision is kept only when it is better and still right: a judge sees the original and the
revision in a seeded random order (A/B, against position bias) and must prefer the revision with
at least ``min_confidence``, and the revised answer must pass a check: for a task the environment
generated, its verifier against the original gold answer; for a teacher-written task, the same
agreement check the synthesizer uses. Every attempt, kept or not, becomes a ``RevisionRecord``;
kept pairs train a local reviser later (``teachloop reviser train``). A revised task keeps its
original text in ``original_question`` / ``original_answer`` so the inspector can show the diff.

The heuristic brain rewrites nothing: environment-verified samples stay as they are, and
unconfirmed teacher-written samples are dropped (nobody could repair them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.config import RevisionConfig, SynthesisConfig
from teachloop.agents.engine import derived_seed
from teachloop.agents.synthesizer import TEACHER_CHECK, check_answer, confirmed, with_check, with_provenance
from teachloop.environments.answer import extract_answer
from teachloop.environments.base import Environment, Skill, Task
from teachloop.foundation.types import Message
from teachloop.llm.client import ChatRequest, TeacherSession
from teachloop.llm.templates import render

MIN_QUESTION_WORDS = 3
Verdict = Literal["original", "revised", "same"]


class RevisionReply(BaseModel):
    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)

    problems: list[str] = Field(default_factory=list)
    question: str = Field(min_length=1)
    solution: str = ""
    answer: str = Field(min_length=1)


class JudgeReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    better: Literal["A", "B", "same"]
    confidence: float = Field(ge=0, le=1)
    reason: str = ""


class RevisionRecord(BaseModel):
    """One revision attempt: the raw sample, the rewrite, the judge's verdict, and whether it was kept."""

    model_config = ConfigDict(frozen=True)

    round: int
    task_id: str
    skill: str
    source: str
    weak_reasons: list[str]
    original_question: str
    original_solution: str
    original_answer: str
    prompt: list[Message] = Field(default_factory=list, description="what the reviser was asked")
    revised_task_id: str | None = None
    revised_question: str | None = None
    revised_solution: str | None = None
    revised_answer: str | None = None
    problems_fixed: list[str] = Field(default_factory=list)
    judge_verdict: Verdict | None = None
    judge_confidence: float | None = None
    judge_reason: str = ""
    check_passed: bool | None = None
    kept: bool = False
    error: str | None = None


def is_teacher_written(task: Task) -> bool:
    return task.source.startswith("teacher:")


def weak_reasons(env: Environment, task: Task) -> list[str]:
    """Why a sample is weak, found without a model; empty when nothing is wrong with it."""
    reasons = []
    check = task.metadata.get(TEACHER_CHECK)
    if not confirmed(task):
        agreement = check.get("agreement") if isinstance(check, dict) else None
        detail = f" (agreement {agreement:.0%})" if isinstance(agreement, int | float) else ""
        reasons.append(f"the answer could not be confirmed{detail}: it may be wrong")
    elif not is_teacher_written(task) and not env.score(task, task.answer).solved:
        reasons.append("the gold answer fails the environment's verifier")
    if extract_answer(task.answer) != task.answer.strip():
        reasons.append("the answer holds more than the final answer")
    if len(task.question.split()) < MIN_QUESTION_WORDS:
        reasons.append("the question is too short to be clear")
    if is_teacher_written(task) and not task.solution.strip():
        reasons.append("there is no worked solution")
    return reasons


def _skill(env: Environment, name: str) -> Skill:
    return next((s for s in env.skills if s.name == name), Skill(name=name))


def revision_prompt(
    task: Task, reasons: list[str], skill: Skill, examples: list[dict[str, str]]
) -> list[Message]:
    return render(
        "reviser",
        skill={"name": skill.name, "description": skill.description},
        question=task.question,
        solution=task.solution,
        answer=task.answer,
        problems=reasons,
        examples=examples,
    )


def judge_prompt(first: Task, second: Task, skill: Skill) -> list[Message]:
    def show(t: Task) -> dict[str, str]:
        return {"question": t.question, "solution": t.solution, "answer": t.answer}

    return render(
        "judge", skill={"name": skill.name, "description": skill.description}, a=show(first), b=show(second)
    )


def revised_task(task: Task, reply: RevisionReply) -> Task:
    metadata = {k: v for k, v in task.metadata.items() if k != TEACHER_CHECK}
    return Task(
        skill=task.skill,
        question=reply.question.strip(),
        answer=reply.answer.strip(),
        solution=reply.solution.strip(),
        difficulty=task.difficulty,
        source=task.source,
        metadata=metadata,
        original_question=task.original_question or task.question,
        original_answer=task.original_answer or task.answer,
    )


def verdict(reply: JudgeReply, revised_first: bool) -> Verdict:
    if reply.better == "same":
        return "same"
    return "revised" if (reply.better == "A") == revised_first else "original"


@dataclass
class RevisionOutcome:
    tasks: list[Task]
    records: list[RevisionRecord]
    summary: dict[str, Any] = field(default_factory=dict)


def keep_unrevised(tasks: list[Task]) -> RevisionOutcome:
    """The heuristic brain: samples stay as they are; unconfirmed teacher answers are dropped."""
    kept = [t for t in tasks if confirmed(t)]
    return RevisionOutcome(
        tasks=kept,
        records=[],
        summary={
            "note": "heuristic reviser: verified samples are left as they are; no rewrites",
            "samples": len(tasks),
            "kept": len(kept),
            "dropped_unconfirmed": len(tasks) - len(kept),
        },
    )


async def revise(
    session: TeacherSession,
    env: Environment,
    tasks: list[Task],
    settings: RevisionConfig,
    synthesis: SynthesisConfig,
    temperature: float,
    round_: int,
    seed: int,
) -> RevisionOutcome:
    """Revise the weak samples (or all, by ``settings.scope``); keep revisions the judge trusts."""
    reasons = {t.id: weak_reasons(env, t) for t in tasks}
    chosen = [t for t in tasks if settings.scope == "all" or reasons[t.id]][: settings.max_per_round]
    examples: dict[str, list[dict[str, str]]] = {}
    for t in tasks:
        if not is_teacher_written(t) and len(examples.setdefault(t.skill, [])) < 2:
            examples[t.skill].append({"question": t.question, "answer": t.answer})

    async def attempt(task: Task) -> tuple[RevisionRecord, Task | None]:
        skill = _skill(env, task.skill)
        record: dict[str, Any] = {
            "round": round_,
            "task_id": task.id,
            "skill": task.skill,
            "source": task.source,
            "weak_reasons": reasons[task.id],
            "original_question": task.question,
            "original_solution": task.solution,
            "original_answer": task.answer,
        }
        messages = revision_prompt(task, reasons[task.id], skill, examples.get(task.skill, []))
        record["prompt"] = messages
        request = ChatRequest(role="reviser", messages=messages, temperature=temperature)
        rewrite = await session.ask(request, RevisionReply, round_=round_)
        if rewrite.value is None:
            return RevisionRecord(**record, error=rewrite.error or "no usable revision"), None
        candidate = with_provenance(revised_task(task, rewrite.value), session, "reviser", "reviser")
        record |= {
            "revised_task_id": candidate.id,
            "revised_question": candidate.question,
            "revised_solution": candidate.solution,
            "revised_answer": candidate.answer,
            "problems_fixed": rewrite.value.problems[:10],
        }
        if (candidate.question, candidate.answer, candidate.solution) == (
            task.question,
            task.answer,
            task.solution,
        ):
            return RevisionRecord(**record, judge_verdict="same", error="the revision changed nothing"), None
        revised_first = derived_seed(seed, round_, task.id, "judge") % 2 == 0
        pair = (candidate, task) if revised_first else (task, candidate)
        judged = await session.ask(
            ChatRequest(role="reviser", messages=judge_prompt(*pair, skill)), JudgeReply, round_, "judge"
        )
        if judged.value is None:
            return RevisionRecord(**record, error=f"judge: {judged.error}"), None
        choice = verdict(judged.value, revised_first)
        record |= {
            "judge_verdict": choice,
            "judge_confidence": judged.value.confidence,
            "judge_reason": judged.value.reason.strip()[:500],
        }
        if choice != "revised" or judged.value.confidence < settings.min_confidence:
            return RevisionRecord(**record, check_passed=None), None
        if is_teacher_written(task):
            check = await check_answer(
                session,
                env,
                candidate,
                synthesis.agreement_samples,
                synthesis.min_agreement,
                temperature,
                round_,
            )
            candidate, passed = with_check(candidate, check), check.passed
        else:
            passed = env.score(task, candidate.answer).solved
        return RevisionRecord(**record, check_passed=passed, kept=passed), candidate if passed else None

    results = await asyncio.gather(*(attempt(t) for t in chosen))
    replaced = {r.task_id: t for r, t in results if t is not None}
    out = []
    for t in tasks:
        if t.id in replaced:
            out.append(replaced[t.id])
        elif confirmed(t):
            out.append(t)
    records = [r for r, _ in results]
    return RevisionOutcome(
        tasks=out,
        records=records,
        summary={
            "samples": len(tasks),
            "weak": sum(bool(r) for r in reasons.values()),
            "offered": len(chosen),
            "revised": sum(r.revised_question is not None for r in records),
            "kept": len(replaced),
            "unusable_replies": sum(r.error is not None for r in records),
            "dropped_unconfirmed": sum(1 for t in tasks if t.id not in replaced and not confirmed(t)),
            "output": len(out),
        },
    )
