"""The LLM diagnoser: metacognitive skill discovery, as in DataEnvGym.

The heuristic report holds what was measured (per-skill accuracy, change, evidence). The LLM reads
the failures with the student's answers and adds what a teacher sees in them: named finer skills
and error patterns, each with a severity and the failures that show it. Environments whose tasks
carry one generic skill label still get a skill map this way (the names are inferred).

Everything the model says is grounded before it is used: a pattern's skill must be one of the
environment's (else it is taken from its evidence, or from the only skill there is) and evidence
must name failures that exist; the rest is dropped. Render and parse are separate and testable
without a model.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.diagnoser import ErrorPattern, FailureExample, Severity, WeaknessReport
from teachloop.environments.base import Skill
from teachloop.evals.metrics import ItemResult
from teachloop.foundation.types import Message
from teachloop.llm.client import ChatRequest, Structured, TeacherSession
from teachloop.llm.templates import render

EVIDENCE_PER_PATTERN = 3
MAX_PATTERNS = 20


class PatternReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    skill: str = ""
    description: str = ""
    severity: Severity = "medium"
    evidence: list[str] = Field(default_factory=list)


class DiagnosisReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    summary: str = ""
    patterns: list[PatternReply] = Field(min_length=1)


def shown_failures(failures: list[ItemResult], per_skill: int) -> list[ItemResult]:
    """The failures the diagnoser reads: the first ``per_skill`` of each skill, in evaluation order."""
    taken: Counter[str] = Counter()
    out = []
    for f in failures:
        if taken[f.skill] < per_skill:
            taken[f.skill] += 1
            out.append(f)
    return out


def diagnosis_prompt(
    report: WeaknessReport, failures: list[ItemResult], skills: list[Skill]
) -> list[Message]:
    described = {s.name: s.description for s in skills}
    return render(
        "diagnoser",
        skills=[
            {
                "name": w.skill,
                "description": described.get(w.skill, ""),
                "accuracy": w.accuracy,
                "n": w.n,
                "change": w.change,
            }
            for w in report.skills
        ],
        failures=[
            {
                "task_id": f.task_id,
                "skill": f.skill,
                "question": f.question,
                "expected": f.answer,
                "got": f.completion,
                "feedback": f.feedback,
            }
            for f in failures
        ],
        skill_names=[w.skill for w in report.skills],
    )


def _example(f: ItemResult) -> FailureExample:
    return FailureExample(
        question=f.question, expected=f.answer, got=f.completion, task_id=f.task_id, feedback=f.feedback
    )


def apply_diagnosis(
    report: WeaknessReport, reply: DiagnosisReply, failures: list[ItemResult]
) -> WeaknessReport:
    """The heuristic report with the LLM's patterns added, each grounded in real skills and failures."""
    skill_names = [w.skill for w in report.skills]
    by_id = {f.task_id: f for f in failures}
    by_lower = {s.lower(): s for s in skill_names}
    patterns: list[ErrorPattern] = []
    seen: set[tuple[str, str]] = set()
    for p in reply.patterns[:MAX_PATTERNS]:
        evidence = [by_id[i] for i in dict.fromkeys(p.evidence) if i in by_id]
        skill = by_lower.get(p.skill.strip().lower())
        if skill is None and evidence:
            skill = Counter(f.skill for f in evidence).most_common(1)[0][0]
        if skill is None and len(skill_names) == 1:
            skill = skill_names[0]
        name = " ".join(p.name.split())[:80]
        if skill is None or (skill, name.lower()) in seen:
            continue
        seen.add((skill, name.lower()))
        patterns.append(
            ErrorPattern(
                name=name,
                skill=skill,
                description=p.description.strip()[:400],
                severity=p.severity,
                evidence=[_example(f) for f in evidence if f.skill == skill][:EVIDENCE_PER_PATTERN],
            )
        )
    summary = reply.summary.strip()[:1000] or report.summary
    return report.model_copy(update={"patterns": patterns, "summary": summary, "brain": "openai"})


async def llm_diagnose(
    session: TeacherSession,
    report: WeaknessReport,
    failures: list[ItemResult],
    skills: list[Skill],
    per_skill: int,
) -> tuple[WeaknessReport, Structured[DiagnosisReply]]:
    """The report with LLM patterns, or the heuristic report unchanged when the reply is unusable."""
    shown = shown_failures(failures, per_skill)
    request = ChatRequest(role="diagnoser", messages=diagnosis_prompt(report, shown, skills))
    reply = await session.ask(request, DiagnosisReply, round_=report.round)
    if reply.value is None:
        return report, reply
    return apply_diagnosis(report, reply.value, shown), reply
