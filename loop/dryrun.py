"""``teachloop run --dry-run``: what a run will do and what its teacher LLM will cost, before it starts.

The estimate renders each LLM role's real prompt with the run's own settings and environment (its
skills, the style examples its generator gives, a plan splitting ``samples_per_round`` evenly), so
prompt sizes follow the templates and options; replies are sized from replies of the expected
shape built from the same tasks. Two things cannot be known before a run and are assumed:

- which samples the reviser gets: with ``teacher.revision.scope: weak``, ``WEAK_SHARE`` of the
  teacher-written tasks (those whose answer the teacher's votes did not confirm, or that lack a
  worked solution); procedural tasks pass the environment's verifier and are not weak. Each is
  counted as rewritten and judged; the votes on a kept rewrite are not counted, since the solver
  sees only the question and a rewrite that fixes an unconfirmed answer keeps it (cached votes);
- how text maps to tokens: ``approx_tokens`` (4 characters a token, OpenAI's rule of thumb for
  English; JSON and code run higher).

The CritiQ roles (``criteria_*``, ``judge``) are listed without an estimate: their calls depend on
the criteria mined from the pairs. Nothing is written: no run directory, no model download.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from teachloop.agents.diagnoser import SkillWeakness, WeaknessReport
from teachloop.agents.llm_diagnoser import DiagnosisReply, PatternReply, diagnosis_prompt
from teachloop.agents.llm_planner import AllocationReply, PlanReply, plan_prompt
from teachloop.agents.planner import Allocation, Plan, split_budget
from teachloop.agents.reviser import JudgeReply, RevisionReply, judge_prompt, revision_prompt
from teachloop.agents.synthesizer import (
    SynthesisReply,
    SynthTask,
    solver_prompt,
    synthesis_jobs,
    synthesis_prompt,
    synthesis_targets,
)
from teachloop.environments.base import Environment, Task, TaskChecker, TaskGenerator
from teachloop.evals.metrics import ItemResult
from teachloop.foundation.types import Message
from teachloop.llm.config import LLMRole
from teachloop.llm.prices import ModelPrice
from teachloop.loop.config import RunConfig

#: Share of teacher-written tasks assumed weak (sent to the reviser) when ``revision.scope`` is weak.
WEAK_SHARE = 1 / 3
#: What the estimate says of roles it cannot size before the run.
_CRITERIA_ROLES: tuple[LLMRole, ...] = ("criteria_manager", "criteria_worker", "judge")

TokenCount = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """About 4 characters a token (English prose; JSON and code run higher)."""
    return math.ceil(len(text) / 4)


class RoleEstimate(BaseModel):
    """One role's calls over the whole run and the tokens they take."""

    model_config = ConfigDict(frozen=True)

    role: str
    model: str
    calls: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    note: str = ""


class DryRun(BaseModel):
    """What a run will do: its size, and its teacher LLM's calls, tokens and cost per role."""

    model_config = ConfigDict(frozen=True)

    env: str
    student: str
    rounds: int
    skills: int
    eval_items: int
    samples_per_round: int
    candidates_per_round: int
    brains: dict[str, str]
    roles: list[RoleEstimate]
    prices: dict[str, ModelPrice]
    token_counter: Literal["approx_tokens", "custom"]

    @property
    def tokens(self) -> int:
        return sum((r.prompt_tokens or 0) + (r.completion_tokens or 0) for r in self.roles)

    @property
    def cost_usd(self) -> float:
        return round(sum(r.cost_usd or 0.0 for r in self.roles), 6)


class _Calls:
    """Calls of one role, summed: how many, and the tokens of each kind."""

    def __init__(self, count: TokenCount) -> None:
        self.count = count
        self.calls = self.prompt = self.completion = 0

    def add(self, messages: list[Message], reply: str, times: int = 1) -> None:
        self.calls += times
        self.prompt += times * sum(self.count(m.content) for m in messages)
        self.completion += times * self.count(reply)


def estimate(config: RunConfig, env: Environment, count: TokenCount = approx_tokens) -> DryRun:
    """The dry run of ``config`` on ``env`` (loaded, so its skills and examples are real)."""
    teacher = config.teacher
    skills = {s.name: s for s in env.skills}
    budget = teacher.samples_per_round
    shares = split_budget({name: 1.0 for name in skills}, budget)
    plan = Plan(
        round=1,
        policy=config.policy,
        budget=budget,
        allocations=[
            Allocation(skill=s.name, n=shares[s.name], difficulty=s.eval_difficulty, reason="even split")
            for s in env.skills
        ],
    )
    dev = env.tasks("dev", config.eval.dev_per_skill, config.seed)
    report = WeaknessReport(
        round=0,
        skills=[
            SkillWeakness(
                skill=name, accuracy=0.5, n=config.eval.dev_per_skill, deficit=0.5, severity="medium"
            )
            for name in skills
        ],
    )
    used = {role: _Calls(count) for role in config.llm_roles}
    rounds = config.rounds

    if "diagnoser" in used:
        shown = _failures(dev, teacher.diagnoser_examples)
        reply = DiagnosisReply(
            summary="The student confuses the steps of each skill.",
            patterns=[
                PatternReply(
                    name=f"{name} slips",
                    skill=name,
                    description=f"wrong answers on {skills[name].description or name}",
                    severity="medium",
                    evidence=[f.task_id for f in shown if f.skill == name],
                )
                for name in skills
            ],
        )
        used["diagnoser"].add(diagnosis_prompt(report, shown, env.skills), reply.model_dump_json(), rounds)
    if "planner" in used:
        reply_plan = PlanReply(
            allocations=[
                AllocationReply(skill=a.skill, n=a.n, difficulty=a.difficulty, reason="a weak skill")
                for a in plan.allocations
            ]
        )
        used["planner"].add(
            plan_prompt(report, env.skills, budget, plan), reply_plan.model_dump_json(), rounds
        )

    oversample = teacher.oversample
    written = 0
    if "synthesizer" in used:
        targets = synthesis_targets(plan, env, teacher.synthesis, oversample)
        written = sum(targets.values())
        for job in synthesis_jobs(plan, report, env, teacher.synthesis, targets, config.seed):
            examples = job.examples or [{"question": t.question, "answer": t.answer} for t in dev[:1]]
            tasks = [_written(examples[i % len(examples)]) for i in range(job.n)]
            written_reply = SynthesisReply(tasks=[SynthTask(**t) for t in tasks]).model_dump_json()
            used["synthesizer"].add(synthesis_prompt(job), written_reply, rounds)
            if not isinstance(env, TaskChecker):
                for t in tasks:
                    task = Task(skill=job.skill.name, question=t["question"], answer=t["answer"])
                    vote = f"{t['solution']}\nFinal answer: {t['answer']}"
                    used["synthesizer"].add(
                        solver_prompt(task, job.skill), vote, rounds * teacher.synthesis.agreement_samples
                    )
    procedural = sum(math.ceil(a.n * oversample) for a in plan.allocations) - written
    if not isinstance(env, TaskGenerator):
        procedural = 0
    candidates = written + max(procedural, 0)

    if "reviser" in used:
        revision = teacher.revision
        weak = candidates if revision.scope == "all" else math.ceil(written * WEAK_SHARE)
        revised = min(weak, revision.max_per_round)
        sample = dev[0] if dev else None
        if sample is not None and revised:
            skill = skills[sample.skill]
            before = sample.model_copy(update={"solution": sample.question})
            rewrite = RevisionReply(
                problems=["the answer could not be confirmed"],
                question=before.question,
                solution=before.solution,
                answer=before.answer,
            )
            examples = [{"question": t.question, "answer": t.answer} for t in dev[:1]]
            messages = revision_prompt(
                before, ["the answer could not be confirmed: it may be wrong"], skill, examples
            )
            used["reviser"].add(messages, rewrite.model_dump_json(), rounds * revised)
            verdict = JudgeReply(better="A", confidence=0.8, reason="A states the answer clearly.")
            used["reviser"].add(
                judge_prompt(before, before, skill), verdict.model_dump_json(), rounds * revised
            )

    llm = config.teacher.llm
    roles = []
    for role in config.llm_roles:
        endpoint = llm.endpoints.get(role)
        model = (endpoint.model if endpoint else None) or llm.model or "?"
        if role in _CRITERIA_ROLES:
            roles.append(
                RoleEstimate(
                    role=role,
                    model=model,
                    calls=None,
                    prompt_tokens=None,
                    completion_tokens=None,
                    cost_usd=None,
                    note="not estimated: depends on the criteria mined",
                )
            )
            continue
        calls = used[role]
        roles.append(
            RoleEstimate(
                role=role,
                model=model,
                calls=calls.calls,
                prompt_tokens=calls.prompt,
                completion_tokens=calls.completion,
                cost_usd=round(llm.price(model).cost(calls.prompt, calls.completion), 6),
                note="" if model in llm.prices else "no price for this model: counted as free",
            )
        )
    models = {r.model for r in roles}
    return DryRun(
        env=env.name,
        student=config.student,
        rounds=rounds,
        skills=len(skills),
        eval_items=len(dev) + len(env.tasks("test", config.eval.test_per_skill, config.seed)),
        samples_per_round=budget,
        candidates_per_round=candidates,
        # the criteria manager only acts when criteria are mined at setup (teacher.criteria.pairs)
        brains={
            role: brain
            for role, brain in config.teacher.brains.model_dump().items()
            if role != "criteria_manager" or config.teacher.criteria.pairs is not None
        },
        roles=roles,
        prices={m: p for m, p in llm.prices.items() if m in models},
        token_counter="approx_tokens" if count is approx_tokens else "custom",
    )


def _failures(dev: list[Task], per_skill: int) -> list[ItemResult]:
    """Dev tasks as the failures the diagnoser reads (the student's answer as long as the gold one)."""
    taken: dict[str, int] = {}
    out = []
    for t in dev:
        if taken.get(t.skill, 0) < per_skill:
            taken[t.skill] = taken.get(t.skill, 0) + 1
            out.append(
                ItemResult(
                    task_id=t.id,
                    skill=t.skill,
                    question=t.question,
                    answer=t.answer,
                    completion=t.answer,
                    parsed_answer=t.answer,
                    reward=0.0,
                    feedback=f"expected {t.answer}",
                )
            )
    return out


def _written(example: dict[str, str]) -> dict[str, str]:
    """A task as the synthesizer would write it: an example's size, with a worked solution as long
    as its question."""
    return {"question": example["question"], "solution": example["question"], "answer": example["answer"]}
