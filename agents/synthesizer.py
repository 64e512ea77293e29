"""The LLM synthesizer: new training tasks, with worked solutions, for the skills a plan names.

Diversity is steered three ways: seed examples of the skill (from the environment's generator, or
the diagnosed failures where there is none) fix the style and answer format; a persona per request
changes the voice; the plan's difficulty and focus (a weakness the diagnoser named) change what is
asked. Requests are told apart by an index, so the cache never hands two requests one reply.

An answer a teacher made up is checked before it counts. Environments that can judge a task on
their own (``TaskChecker``: run code against tests, check a constraint) decide; elsewhere the
teacher solves the question again ``agreement_samples`` times, independently, and the task is
confirmed when enough of those answers pass the environment's verifier against the proposed one.
The check is stored on the task (``metadata["teacher_check"]``); unconfirmed tasks go to the
reviser, which may repair them, and never reach training unrepaired.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.config import SynthesisConfig
from teachloop.agents.diagnoser import ErrorPattern, WeaknessReport
from teachloop.agents.engine import derived_seed
from teachloop.agents.planner import Plan
from teachloop.environments.base import (
    Environment,
    Skill,
    Task,
    TaskChecker,
    TaskGenerator,
    normalize_question,
)
from teachloop.foundation.types import Message
from teachloop.llm.client import ChatRequest, LLMError, TeacherSession
from teachloop.llm.config import LLMRole
from teachloop.llm.quoting import without_data
from teachloop.llm.templates import render, template_hash

TEACHER_CHECK = "teacher_check"
SYNTH_SOURCE = "teacher:synthesizer"
_FINAL = re.compile(r"final answer\s*[:=]", re.IGNORECASE)


class SynthTask(BaseModel):
    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)

    question: str = Field(min_length=1)
    solution: str = ""
    answer: str = Field(min_length=1)


class SynthesisReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    tasks: list[SynthTask] = Field(min_length=1)


class AnswerCheck(BaseModel):
    """How a task's answer was confirmed: by the environment or by the teacher's agreement."""

    model_config = ConfigDict(frozen=True)

    method: Literal["verifier", "agreement"]
    passed: bool
    agreement: float | None = None
    votes: int = 0
    answers: list[str] = Field(default_factory=list)


def confirmed(task: Task) -> bool:
    """False only for a teacher-written task whose answer failed its check."""
    check = task.metadata.get(TEACHER_CHECK)
    return not isinstance(check, dict) or bool(check.get("passed"))


@dataclass(frozen=True)
class SynthesisJob:
    """One synthesis request: what to write, for whom, in which voice."""

    skill: Skill
    difficulty: int
    n: int
    index: int
    persona: str
    focus: ErrorPattern | None = None
    examples: list[dict[str, str]] = field(default_factory=list)


@dataclass
class SynthesisResult:
    tasks: list[Task] = field(default_factory=list)
    requests: int = 0
    unusable_replies: int = 0
    written: int = 0
    duplicates: int = 0
    confirmed: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "unusable_replies": self.unusable_replies,
            "written": self.written,
            "duplicates": self.duplicates,
            "confirmed": sum(self.confirmed.values()),
            "unconfirmed": self.written - self.duplicates - sum(self.confirmed.values()),
        }


def synthesis_targets(
    plan: Plan, env: Environment, settings: SynthesisConfig, oversample: float
) -> dict[str, int]:
    """Tasks to ask the LLM for, per skill: a share of each allocation, or all of it without a generator."""
    share = settings.share if isinstance(env, TaskGenerator) else 1.0
    return {a.skill: math.ceil(a.n * oversample * share) for a in plan.allocations if a.n > 0}


def seed_examples(
    env: Environment, report: WeaknessReport, skill: str, difficulty: int, k: int, seed: int
) -> list[dict[str, str]]:
    """Examples that fix a skill's style and answer format (never dev or test items where avoidable)."""
    if k == 0:
        return []
    if isinstance(env, TaskGenerator):
        return [
            {"question": t.question, "answer": t.answer} for t in env.generate(skill, k, difficulty, seed)
        ]
    weakness = report.weakness(skill)
    evidence = weakness.evidence if weakness else []
    return [{"question": e.question, "answer": e.expected} for e in evidence[:k]]


def synthesis_jobs(
    plan: Plan,
    report: WeaknessReport,
    env: Environment,
    settings: SynthesisConfig,
    targets: dict[str, int],
    seed: int,
) -> list[SynthesisJob]:
    skills = {s.name: s for s in env.skills}
    jobs = []
    for allocation in plan.allocations:
        target = targets.get(allocation.skill, 0)
        if target <= 0:
            continue
        patterns = report.patterns_of(allocation.skill)
        named = [p for p in patterns if p.name in allocation.focus]
        severity = {"high": 0, "medium": 1, "low": 2}
        ranked = named or sorted(patterns, key=lambda p: severity[p.severity])
        foci: list[ErrorPattern | None] = [*ranked] or [None]
        rng = random.Random(derived_seed(seed, plan.round, allocation.skill, "synthesis"))
        start = rng.randrange(len(settings.personas)) if settings.personas else 0
        examples = seed_examples(
            env,
            report,
            allocation.skill,
            allocation.difficulty,
            settings.seed_examples,
            derived_seed(seed, plan.round, allocation.skill, "examples"),
        )
        for index in range(math.ceil(target / settings.tasks_per_call)):
            jobs.append(
                SynthesisJob(
                    skill=skills[allocation.skill],
                    difficulty=allocation.difficulty,
                    n=min(settings.tasks_per_call, target - index * settings.tasks_per_call),
                    index=index,
                    persona=settings.personas[(start + index) % len(settings.personas)]
                    if settings.personas
                    else "a teacher",
                    focus=foci[index % len(foci)],
                    examples=examples,
                )
            )
    return jobs


def synthesis_prompt(job: SynthesisJob) -> list[Message]:
    focus = None
    if job.focus is not None:
        focus = {
            "name": job.focus.name,
            "description": job.focus.description,
            "examples": [
                e.model_dump(include={"question", "expected", "got"}) for e in job.focus.evidence[:2]
            ],
        }
    return render(
        "synthesizer",
        skill={"name": job.skill.name, "description": job.skill.description},
        difficulty=job.difficulty,
        min_difficulty=job.skill.min_difficulty,
        max_difficulty=job.skill.max_difficulty,
        focus=focus,
        persona=job.persona,
        examples=job.examples,
        n=job.n,
    )


def tasks_from_reply(reply: SynthesisReply, job: SynthesisJob) -> list[Task]:
    metadata: dict[str, Any] = {"persona": job.persona}
    if job.focus is not None:
        metadata["focus"] = job.focus.name
    return [
        Task(
            skill=job.skill.name,
            question=t.question.strip(),
            answer=t.answer.strip(),
            solution=t.solution.strip(),
            difficulty=job.difficulty,
            source=SYNTH_SOURCE,
            metadata=metadata,
        )
        for t in reply.tasks[: job.n]
        if t.question.strip() and t.answer.strip()
    ]


def solver_prompt(task: Task, skill: Skill) -> list[Message]:
    return render(
        "solver", skill={"name": skill.name, "description": skill.description}, question=task.question
    )


def final_answer(text: str) -> str:
    """What follows the last "Final answer:" in a solver's reply (the whole reply if none); the
    problem quoted back in the reply is not the solver's own word and is skipped."""
    text = without_data(text)
    marks = list(_FINAL.finditer(text))
    return text[marks[-1].end() :].strip() if marks else text.strip()


async def check_answer(
    session: TeacherSession,
    env: Environment,
    task: Task,
    samples: int,
    min_agreement: float,
    temperature: float,
    round_: int,
) -> AnswerCheck:
    """Confirm a teacher-written answer: the environment's own judgement, or independent agreement."""
    if isinstance(env, TaskChecker):
        return AnswerCheck(method="verifier", passed=env.check_task(task).solved)
    skill = next((s for s in env.skills if s.name == task.skill), Skill(name=task.skill))
    messages = solver_prompt(task, skill)

    async def vote(i: int) -> str | None:
        request = ChatRequest(role="synthesizer", messages=messages, temperature=temperature, sample=i)
        try:
            return final_answer((await session.chat(request, round_, purpose="vote")).text)
        except LLMError:
            return None  # an abstention: it does not count as agreement

    answers = await asyncio.gather(*(vote(i) for i in range(samples)))
    agree = sum(1 for a in answers if a is not None and env.score(task, a).solved)
    agreement = agree / samples
    return AnswerCheck(
        method="agreement",
        passed=agreement >= min_agreement,
        agreement=round(agreement, 4),
        votes=samples,
        answers=[a[:200] for a in answers if a is not None],
    )


#: Metadata key of the LLM that wrote a task's text: its model and prompt template (``template_hash``).
MADE_BY = "llm"


def with_provenance(task: Task, session: TeacherSession, role: LLMRole, template: str) -> Task:
    """The task marked with the model and prompt template that wrote it (exported with the data)."""
    made_by = {"model": session.teacher.endpoint(role).model, "template": template_hash(template)}
    return task.model_copy(update={"metadata": {**task.metadata, MADE_BY: made_by}})


def with_check(task: Task, check: AnswerCheck) -> Task:
    return task.model_copy(update={"metadata": {**task.metadata, TEACHER_CHECK: check.model_dump()}})


async def synthesize(
    session: TeacherSession,
    env: Environment,
    plan: Plan,
    report: WeaknessReport,
    settings: SynthesisConfig,
    temperature: float,
    oversample: float,
    known_questions: set[str],
    seed: int,
) -> SynthesisResult:
    """Write, deduplicate and check new tasks for every allocation of ``plan``."""
    jobs = synthesis_jobs(
        plan, report, env, settings, synthesis_targets(plan, env, settings, oversample), seed
    )

    async def run(job: SynthesisJob) -> list[Task] | str:
        request = ChatRequest(
            role="synthesizer", messages=synthesis_prompt(job), temperature=temperature, sample=job.index
        )
        reply = await session.ask(request, SynthesisReply, round_=plan.round)
        if reply.value is None:
            return reply.error or "no reply"
        return [
            with_provenance(t, session, "synthesizer", "synthesizer")
            for t in tasks_from_reply(reply.value, job)
        ]

    result = SynthesisResult(requests=len(jobs))
    seen = set(known_questions)
    fresh: list[Task] = []
    for outcome in await asyncio.gather(*(run(job) for job in jobs)):
        if isinstance(outcome, str):
            result.unusable_replies += 1
            result.errors.append(outcome[:300])
            continue
        for task in outcome:
            result.written += 1
            key = normalize_question(task.question)
            if key in seen:
                result.duplicates += 1
                continue
            seen.add(key)
            fresh.append(task)
    checks = await asyncio.gather(
        *(
            check_answer(
                session, env, t, settings.agreement_samples, settings.min_agreement, temperature, plan.round
            )
            for t in fresh
        )
    )
    for task, check in zip(fresh, checks, strict=True):
        result.tasks.append(with_check(task, check))
        if check.passed:
            result.confirmed[task.skill] = result.confirmed.get(task.skill, 0) + 1
    return result
