"""The LLM agents' render and parse steps, without a model; and their flows against scripted replies
from a loopback server (tests/fake_openai.py) through the real client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
from fake_openai import FakeOpenAI

from teachloop.agents.config import RevisionConfig, SynthesisConfig
from teachloop.agents.diagnoser import ErrorPattern, FailureExample, WeaknessReport, diagnose
from teachloop.agents.feedback import feedback_view
from teachloop.agents.llm_diagnoser import DiagnosisReply, apply_diagnosis, diagnosis_prompt, shown_failures
from teachloop.agents.llm_planner import PlanReply, build_plan, llm_plan, plan_prompt
from teachloop.agents.planner import Allocation, Plan
from teachloop.agents.reviser import (
    JudgeReply,
    RevisionReply,
    judge_prompt,
    keep_unrevised,
    revise,
    revised_task,
    revision_prompt,
    verdict,
    weak_reasons,
)
from teachloop.agents.synthesizer import (
    TEACHER_CHECK,
    AnswerCheck,
    SynthesisReply,
    check_answer,
    confirmed,
    final_answer,
    synthesis_jobs,
    synthesis_prompt,
    synthesis_targets,
    tasks_from_reply,
    with_check,
)
from teachloop.environments.base import Score, Skill, Task
from teachloop.environments.reasoning_gym import default_environment
from teachloop.evals.metrics import ItemResult, summarize
from teachloop.foundation.types import Message
from teachloop.llm.client import Teacher
from teachloop.llm.config import LLMConfig
from teachloop.llm.parsing import ReplyError, parse_reply
from teachloop.llm.templates import render
from teachloop.tracing.spans import Tracer

SKILLS = [
    Skill(name="add", description="add two numbers", min_difficulty=0, max_difficulty=2, eval_difficulty=1),
    Skill(name="reverse", description="reverse words", min_difficulty=0, max_difficulty=2, eval_difficulty=1),
]


def _results(skill_acc: dict[str, float], n: int = 4) -> list[ItemResult]:
    out = []
    for skill, acc in skill_acc.items():
        for i in range(n):
            solved = i < round(acc * n)
            out.append(
                ItemResult(
                    task_id=f"{skill}-{i}",
                    skill=skill,
                    question=f"{skill} question {i}",
                    answer="42",
                    completion="42" if solved else f"I think {i}",
                    parsed_answer=None,
                    reward=1.0 if solved else 0.0,
                    feedback="",
                )
            )
    return out


def _report(skill_acc: dict[str, float]) -> tuple[WeaknessReport, list[ItemResult]]:
    results = _results(skill_acc)
    failures = [r for r in results if not r.solved]
    view = feedback_view("skill_list", summarize(0, "dev", results), results)
    return diagnose(view), failures


def _teacher(tmp_path: Path, base_url: str) -> Teacher:
    cfg = LLMConfig(base_url=base_url, model="fake", timeout_s=5, backoff_s=0.01, backoff_max_s=0.02)
    roles: list[Any] = ["diagnoser", "planner", "synthesizer", "reviser"]
    return Teacher(cfg, roles, Tracer(tmp_path / "traces.sqlite"), None)


def _system(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"])


# -- prompts -----------------------------------------------------------------------------------


def test_every_prompt_renders_with_strict_undefined() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("diagnoser", skills=[], failures=[])  # skill_names missing
    report, failures = _report({"add": 0.25, "reverse": 0.5})
    messages = diagnosis_prompt(report, failures, SKILLS)
    assert [m.role for m in messages] == ["system", "user"]
    assert "[add-1] skill: add" in messages[1].content and "Student: I think 1" in messages[1].content
    assert "one of: add, reverse" in messages[1].content
    assert "Verifier:" not in messages[1].content  # no feedback, no line
    with_feedback = [failures[0].model_copy(update={"feedback": "expected 42, got 'I think 0'"})]
    assert "Verifier: expected 42, got" in diagnosis_prompt(report, with_feedback, SKILLS)[1].content


def test_diagnoser_reads_a_bounded_number_of_failures_per_skill() -> None:
    _, failures = _report({"add": 0.0, "reverse": 0.25})
    shown = shown_failures(failures, 2)
    assert [f.task_id for f in shown] == ["add-0", "add-1", "reverse-1", "reverse-2"]


# -- diagnoser ---------------------------------------------------------------------------------


def test_diagnosis_is_grounded_in_real_skills_and_failures() -> None:
    report, failures = _report({"add": 0.25, "reverse": 0.5})
    reply = parse_reply(
        json.dumps(
            {
                "summary": "Carries and word order.",
                "patterns": [
                    {
                        "name": "carrying",
                        "skill": "ADD",
                        "description": "loses the carry",
                        "severity": "high",
                        "evidence": ["add-1", "nope", "reverse-2"],
                    },
                    {
                        "name": "order",
                        "skill": "unknown",
                        "description": "x",
                        "severity": "low",
                        "evidence": ["reverse-2"],
                    },
                    {
                        "name": "orphan",
                        "skill": "unknown",
                        "description": "y",
                        "severity": "low",
                        "evidence": [],
                    },
                    {"name": "carrying", "skill": "add", "description": "duplicate", "severity": "low"},
                ],
            }
        ),
        DiagnosisReply,
    )
    out = apply_diagnosis(report, reply, failures)
    assert out.brain == "openai" and out.summary == "Carries and word order."
    assert [(p.name, p.skill) for p in out.patterns] == [("carrying", "add"), ("order", "reverse")]
    assert [e.task_id for e in out.patterns[0].evidence] == ["add-1"]  # unknown and other-skill ids dropped
    assert out.skills == report.skills  # the measured numbers are the heuristic's


def test_diagnoser_infers_skills_for_untagged_tasks() -> None:
    report, failures = _report({"general": 0.0})
    reply = DiagnosisReply.model_validate(
        {
            "patterns": [
                {"name": "two-digit addition", "description": "a", "evidence": ["general-0"]},
                {"name": "word reversal", "skill": "reversal", "description": "b"},
            ]
        }
    )
    out = apply_diagnosis(report, reply, failures)
    assert [(p.name, p.skill) for p in out.patterns] == [
        ("two-digit addition", "general"),
        ("word reversal", "general"),
    ]
    assert out.patterns_of("general")[0].severity == "medium"


# -- planner -----------------------------------------------------------------------------------


def _report_with_patterns() -> WeaknessReport:
    report, _ = _report({"add": 0.0, "reverse": 0.75})
    pattern = ErrorPattern(name="carrying", skill="add", description="loses the carry", severity="high")
    return report.model_copy(update={"patterns": [pattern]})


def test_plan_prompt_shows_budget_skills_and_patterns() -> None:
    text = plan_prompt(_report_with_patterns(), SKILLS, 40, None)[1].content
    assert "budget: 40" in text and "carrying (skill add, high)" in text and "levels 0-2" in text


def test_llm_plan_is_validated_and_clamped_to_the_budget() -> None:
    reply = PlanReply.model_validate(
        {
            "allocations": [
                {
                    "skill": "add",
                    "n": 30,
                    "difficulty": 9,
                    "focus": ["Carrying", "made up"],
                    "reason": "weak",
                },
                {"skill": "add", "n": 10, "reason": "more"},
                {"skill": "reverse", "n": -5, "difficulty": -3},
                {"skill": "ghost", "n": 100},
            ]
        }
    )
    plan = build_plan(reply, _report_with_patterns(), SKILLS, budget=20, min_share=0.1)
    by = {a.skill: a for a in plan.allocations}
    assert plan.total == 20 and plan.policy == "llm" and plan.round == 1
    assert by["add"].difficulty == 2 and by["reverse"].difficulty == 0
    assert by["add"].focus == ["carrying"] and by["add"].n == 18 and by["reverse"].n == 2
    assert "weak; more" in by["add"].reason and "scaled to the budget" in by["add"].reason
    with pytest.raises(ReplyError, match="no examples"):
        build_plan(
            PlanReply.model_validate({"allocations": [{"skill": "ghost", "n": 5}]}),
            _report_with_patterns(),
            SKILLS,
            20,
            0.1,
        )


def test_llm_planner_returns_none_on_garbage_so_the_node_falls_back(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: "\n\n\n") as server:
        teacher = _teacher(tmp_path, server.base_url)
        plan, reply = teacher.run(lambda s: llm_plan(s, _report_with_patterns(), SKILLS, 20, 0.1, None))
    assert plan is None and reply.raw == "\n\n\n" and "no JSON" in (reply.error or "")


# -- synthesizer -------------------------------------------------------------------------------


def test_synthesis_jobs_split_targets_rotate_personas_and_focus() -> None:
    env = default_environment()
    plan = Plan(
        round=1,
        policy="llm",
        budget=10,
        allocations=[Allocation(skill="chain_sum", n=8, difficulty=1, reason="", focus=["carry"])],
    )
    report = WeaknessReport(
        round=0,
        skills=[],
        patterns=[
            ErrorPattern(
                name="carry",
                skill="chain_sum",
                description="loses carries",
                severity="high",
                evidence=[FailureExample(question="9 + 5 =", expected="14", got="13")],
            ),
            ErrorPattern(name="other", skill="chain_sum", description="x", severity="low"),
        ],
    )
    settings = SynthesisConfig(share=0.5, tasks_per_call=2, personas=["p1", "p2", "p3"], seed_examples=2)
    targets = synthesis_targets(plan, env, settings, oversample=1.25)
    assert targets == {"chain_sum": 5}
    jobs = synthesis_jobs(plan, report, env, settings, targets, seed=0)
    assert [j.n for j in jobs] == [2, 2, 1] and [j.index for j in jobs] == [0, 1, 2]
    assert len({j.persona for j in jobs}) == 3 and all(j.focus and j.focus.name == "carry" for j in jobs)
    assert len(jobs[0].examples) == 2
    text = synthesis_prompt(jobs[0])[1].content
    assert (
        "Write as p" in text
        and "loses carries" in text
        and "9 + 5 =" in text
        and "Write 2 new problems" in text
    )
    assert jobs == synthesis_jobs(plan, report, env, settings, targets, seed=0)  # deterministic


def test_tasks_from_reply_and_final_answer() -> None:
    env = default_environment()
    plan = Plan(
        round=1, policy="llm", budget=4, allocations=[Allocation(skill="aiw", n=4, difficulty=0, reason="")]
    )
    [job, *_] = synthesis_jobs(
        plan, WeaknessReport(round=0, skills=[]), env, SynthesisConfig(), {"aiw": 4}, 0
    )
    reply = parse_reply(
        '{"tasks": [{"question": "Q1?", "solution": "s", "answer": 3}, {"question": " ", "answer": "x"}]}',
        SynthesisReply,
    )
    [task] = tasks_from_reply(reply, job)
    assert task.answer == "3" and task.source == "teacher:synthesizer" and task.solution == "s"
    assert task.metadata["persona"] == job.persona
    assert final_answer("3 + 4 is 7.\nFinal answer: 7") == "7"
    assert final_answer("final answer: 1, then Final Answer = 2") == "2"
    assert final_answer("just 5") == "just 5"


def test_answers_are_checked_by_agreement(tmp_path: Path) -> None:
    env = default_environment()
    task = Task(skill="chain_sum", question="What is 3 + 4?", answer="7", source="teacher:synthesizer")
    wrong = Task(skill="chain_sum", question="What is 3 + 4?", answer="8", source="teacher:synthesizer")
    answers = iter(["Final answer: 7", "Final answer: 7", "Final answer: 6"] * 2)
    with FakeOpenAI(lambda body: next(answers)) as server:
        teacher = _teacher(tmp_path, server.base_url)
        good = teacher.run(lambda s: check_answer(s, env, task, 3, 0.6, 0.8, 1))
        bad = teacher.run(lambda s: check_answer(s, env, wrong, 3, 0.6, 0.8, 1))
    assert good.method == "agreement" and good.passed and good.agreement == 0.6667 and good.votes == 3
    assert sorted(good.answers) == ["6", "7", "7"]
    assert not bad.passed and bad.agreement == 0.0
    assert confirmed(with_check(task, good)) and not confirmed(with_check(wrong, bad)) and confirmed(task)


class _CheckingEnv:
    """An environment that can judge a teacher's task itself (TaskChecker)."""

    def __init__(self) -> None:
        self.name = "checking"
        self.skills = [Skill(name="s")]

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        return []

    def prompt(self, task: Task) -> list[Message]:
        return [Message(role="user", content=task.question)]

    def score(self, task: Task, completion: str) -> Score:
        return Score(reward=float(completion.strip() == task.answer))

    def check_task(self, task: Task) -> Score:
        return Score(reward=float(task.answer == "ok"))


def test_an_environment_that_checks_tasks_decides_without_votes(tmp_path: Path) -> None:
    env = _CheckingEnv()
    with FakeOpenAI(lambda body: "unused") as server:
        teacher = _teacher(tmp_path, server.base_url)
        check = teacher.run(
            lambda s: check_answer(s, env, Task(skill="s", question="q", answer="ok"), 3, 0.6, 0.8, 1)
        )  # type: ignore[arg-type]
        assert server.counts["requests"] == 0
    assert check.method == "verifier" and check.passed


# -- reviser -----------------------------------------------------------------------------------


def test_weak_reasons_need_no_model() -> None:
    env = default_environment()
    good = env.generate("chain_sum", 1, 0, seed=1)[0]
    assert weak_reasons(env, good) == []
    broken = good.model_copy(update={"answer": "The answer is 12, since 4 + 8 = 12."})
    reasons = weak_reasons(env, broken)
    assert any("fails the environment's verifier" in r for r in reasons)
    assert any("more than the final answer" in r for r in reasons)
    unconfirmed = with_check(
        Task(skill="aiw", question="Hi?", answer="2", source="teacher:synthesizer"),
        AnswerCheck(method="agreement", passed=False, agreement=1 / 3, votes=3),
    )
    text = " | ".join(weak_reasons(env, unconfirmed))
    assert (
        "could not be confirmed (agreement 33%)" in text
        and "too short" in text
        and "no worked solution" in text
    )


def test_revision_and_judge_prompts_and_verdicts() -> None:
    task = Task(skill="aiw", question="Alice has 2 brothers?", answer="3", solution="")
    text = revision_prompt(task, ["the question is too short to be clear"], Skill(name="aiw"), [])[1].content
    assert (
        "Alice has 2 brothers?" in text and "- the question is too short" in text and "(none given)" in text
    )
    revised = revised_task(
        task, RevisionReply(question="Alice has 2 brothers and 1 sister. ...?", answer="2")
    )
    assert (
        revised.original_question == task.question
        and revised.original_answer == "3"
        and revised.id != task.id
    )
    judge = judge_prompt(revised, task, Skill(name="aiw"))[1].content
    assert judge.index("Version A") < judge.index("2 brothers and 1 sister") < judge.index("Version B")
    assert verdict(JudgeReply(better="A", confidence=0.9), revised_first=True) == "revised"
    assert verdict(JudgeReply(better="A", confidence=0.9), revised_first=False) == "original"
    assert verdict(JudgeReply(better="B", confidence=0.9), revised_first=False) == "revised"
    assert verdict(JudgeReply(better="same", confidence=0.9), revised_first=True) == "same"


def test_heuristic_reviser_leaves_verified_samples_and_drops_unconfirmed() -> None:
    env = default_environment()
    tasks = env.generate("chain_sum", 3, 0, seed=2)
    bad = with_check(
        Task(skill="chain_sum", question="What is 2 + 2?", answer="5", source="teacher:synthesizer"),
        AnswerCheck(method="agreement", passed=False, agreement=0.0, votes=3),
    )
    outcome = keep_unrevised([*tasks, bad])
    assert outcome.tasks == tasks and outcome.records == []
    assert outcome.summary["dropped_unconfirmed"] == 1 and "left as they are" in outcome.summary["note"]


def _reviser_server(confidence: float, fixed_answer: str) -> FakeOpenAI:
    def responder(body: dict[str, Any]) -> str:
        system = _system(body)
        if "coach" in system:
            return json.dumps(
                {
                    "problems": ["wrong answer"],
                    "question": "What is 2 + 2? Reply with the number.",
                    "solution": "2 + 2 = 4",
                    "answer": fixed_answer,
                }
            )
        if "judge" in system:
            user = body["messages"][-1]["content"]
            revised_is_a = user.index("Reply with the number") < user.index("Version B")
            return json.dumps(
                {"better": "A" if revised_is_a else "B", "confidence": confidence, "reason": "fixed"}
            )
        return "Final answer: 4"  # the solver, for the agreement check

    return FakeOpenAI(responder)


@pytest.mark.parametrize(
    ("confidence", "answer", "kept"), [(0.9, "4", True), (0.5, "4", False), (0.9, "5", False)]
)
def test_llm_reviser_keeps_only_confident_and_checked_revisions(
    tmp_path: Path, confidence: float, answer: str, kept: bool
) -> None:
    env = default_environment()
    procedural = env.generate("chain_sum", 2, 0, seed=3)
    bad = with_check(
        Task(
            skill="chain_sum",
            question="What is 2 + 2?",
            answer="5",
            solution="2+2=5",
            source="teacher:synthesizer",
        ),
        AnswerCheck(method="agreement", passed=False, agreement=0.0, votes=3),
    )
    with _reviser_server(confidence, answer) as server:
        teacher = _teacher(tmp_path, server.base_url)
        outcome = teacher.run(
            lambda s: revise(s, env, [*procedural, bad], RevisionConfig(), SynthesisConfig(), 0.8, 1, 0)
        )
    [record] = outcome.records
    assert record.task_id == bad.id and record.original_answer == "5" and record.revised_answer == answer
    assert record.kept is kept and record.prompt and record.judge_confidence == confidence
    assert outcome.tasks[:2] == procedural  # verified procedural samples are not offered in scope "weak"
    if kept:
        assert record.judge_verdict == "revised" and record.check_passed
        new = outcome.tasks[2]
        assert new.original_question == "What is 2 + 2?" and new.answer == "4"
        assert new.metadata[TEACHER_CHECK]["passed"] is True
    else:
        assert len(outcome.tasks) == 2 and outcome.summary["dropped_unconfirmed"] == 1
