"""Each teacher role's LLM brain, given a reply it cannot use (garbage, then garbage to the repair),
does what its heuristic brain does, and its agent span says so the same way for every role:
``fallback`` (what was used instead) and ``error`` (why). The real client talks to a loopback
server (tests/fake_openai.py); no model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, get_args

import pytest
from fake_openai import FakeOpenAI

from teachloop.agents.config import RevisionConfig, SynthesisConfig
from teachloop.agents.diagnoser import WeaknessReport
from teachloop.agents.feedback import feedback_view
from teachloop.agents.planner import Allocation, Plan
from teachloop.agents.roles import (
    HeuristicDiagnoser,
    HeuristicPlanner,
    HeuristicReviser,
    LLMDiagnoser,
    LLMPlanner,
    LLMReviser,
    LLMSynthesizer,
    ProceduralSource,
    record_fallback,
)
from teachloop.agents.synthesizer import AnswerCheck, with_check
from teachloop.criteria.agents import CriteriaReport, LibraryManager, LLMManager, MinedCriterion
from teachloop.criteria.library import Criterion
from teachloop.criteria.pairs import PairSample, PreferencePair
from teachloop.criteria.scoring import LLMSampleJudge, Unscored
from teachloop.environments.base import Task
from teachloop.environments.reasoning_gym import default_environment
from teachloop.evals.metrics import ItemResult, summarize
from teachloop.llm.client import Teacher
from teachloop.llm.config import LLMConfig, LLMRole
from teachloop.tracing.spans import SpanHandle, Tracer, read_spans

GARBAGE = "\n\n\n"  # no JSON in it: the repair gets the same, and the reply is unusable


@pytest.fixture
def garbage_server() -> Any:
    with FakeOpenAI(lambda body: GARBAGE) as server:
        yield server


@pytest.fixture
def tracer(tmp_path: Path) -> Any:
    with Tracer(tmp_path / "traces.sqlite") as t:
        yield t


def _teacher(url: str, tracer: Tracer) -> Teacher:
    cfg = LLMConfig(base_url=url, model="fake", timeout_s=5, backoff_s=0.01, backoff_max_s=0.02)
    return Teacher(cfg, list(get_args(LLMRole)), tracer, None)


def _agent(tracer: Tracer, name: str) -> dict[str, Any]:
    """The attributes of the one agent span called ``name``."""
    assert tracer.path is not None
    [span] = [s for s in read_spans(tracer.path) if s.kind == "agent" and s.name == name]
    return dict(json.loads(span.attrs or "{}"))


def _said_fallback(attrs: dict[str, Any], what: str) -> None:
    assert attrs["fallback"] == what and "no JSON" in attrs["error"], attrs


def _results() -> list[ItemResult]:
    env = default_environment()
    out = []
    for skill in [s.name for s in env.skills][:2]:
        for i in range(4):
            solved = i == 0
            out.append(
                ItemResult(
                    task_id=f"{skill}-{i}",
                    skill=skill,
                    question=f"{skill} question {i}",
                    answer="42",
                    completion="42" if solved else "no idea",
                    parsed_answer=None,
                    reward=float(solved),
                    feedback="",
                )
            )
    return out


def _view_and_failures() -> tuple[Any, list[ItemResult]]:
    results = _results()
    return feedback_view("skill_list", summarize(0, "dev", results), results), [
        r for r in results if not r.solved
    ]


def test_record_fallback_marks_a_span_and_counts_repeats() -> None:
    span = SpanHandle("s")
    record_fallback(span, "seed library", None)
    record_fallback(span, "no replacement", "timeout")
    assert span.attrs == {"fallback": "no replacement", "error": "timeout", "fallbacks": 2}
    record_fallback(None, "nothing to mark", "fine")  # no open span: nothing happens


def test_llm_diagnoser_falls_back_to_the_heuristic_report(garbage_server: Any, tracer: Tracer) -> None:
    env = default_environment()
    view, failures = _view_and_failures()
    heuristic = HeuristicDiagnoser(tracer)
    llm = LLMDiagnoser(_teacher(garbage_server.base_url, tracer), env.skills, 2, tracer, fallback=heuristic)
    report = llm.diagnose(view, None, failures)
    assert report == HeuristicDiagnoser(Tracer(None)).diagnose(view, None, failures)
    assert report.brain == "heuristic" and report.patterns == []
    _said_fallback(_agent(tracer, "diagnoser.openai"), "heuristic report")


@pytest.mark.parametrize("policy", ["deficit", "uniform"])
def test_llm_planner_falls_back_to_its_policy(garbage_server: Any, tracer: Tracer, policy: Any) -> None:
    env = default_environment()
    view, _ = _view_and_failures()
    report = HeuristicDiagnoser(Tracer(None)).diagnose(view, None, [])
    heuristic = HeuristicPlanner(policy, env.skills, 20, 0.1, tracer)
    llm = LLMPlanner(_teacher(garbage_server.base_url, tracer), env.skills, 20, 0.1, tracer, heuristic)
    plan = llm.plan(report, None)
    expected = HeuristicPlanner(policy, env.skills, 20, 0.1, Tracer(None)).plan(report, None)
    assert plan.policy == policy and [a.n for a in plan.allocations] == [a.n for a in expected.allocations]
    assert all(a.reason.startswith(f"LLM plan unusable, {policy} policy: ") for a in plan.allocations)
    _said_fallback(_agent(tracer, "planner.llm"), f"{policy} policy")


def test_llm_synthesizer_falls_back_to_the_procedural_generator(garbage_server: Any, tracer: Tracer) -> None:
    env = default_environment()
    allocations = [Allocation(skill=s, n=3, difficulty=0, reason="") for s in ("chain_sum", "aiw")]
    plan = Plan(round=1, policy="deficit", budget=6, allocations=allocations)
    report = WeaknessReport(round=0, skills=[])
    procedural = ProceduralSource(env, 0, 1.0, tracer)
    llm = LLMSynthesizer(
        _teacher(garbage_server.base_url, tracer),
        env,
        SynthesisConfig(),
        0.8,
        1.0,
        0,
        tracer,
        fallback=procedural,
    )
    tasks = llm.tasks(plan, report, set())
    alone = ProceduralSource(env, 0, 1.0, Tracer(None)).tasks(plan, report, set())
    assert [t.id for t in tasks] == [t.id for t in alone] and tasks
    _said_fallback(_agent(tracer, "synthesizer.openai"), "procedural generator")


def test_llm_reviser_leaves_samples_as_the_heuristic_does(garbage_server: Any, tracer: Tracer) -> None:
    env = default_environment()
    bad = with_check(
        Task(skill="chain_sum", question="What is 2 + 2?", answer="5", source="teacher:synthesizer"),
        AnswerCheck(method="agreement", passed=False, agreement=0.0, votes=3),
    )
    tasks = [*env.generate("chain_sum", 2, 0, seed=3), bad]
    llm = LLMReviser(
        _teacher(garbage_server.base_url, tracer), env, RevisionConfig(), SynthesisConfig(), 0.8, 0, tracer
    )
    outcome = llm.revise(1, tasks)
    assert outcome.tasks == HeuristicReviser(Tracer(None)).revise(1, tasks).tasks
    assert [r.task_id for r in outcome.records] == [bad.id] and outcome.records[0].error
    _said_fallback(_agent(tracer, "reviser.openai"), "unrevised samples")


def test_llm_judge_leaves_samples_unscored(garbage_server: Any, tracer: Tracer, tmp_path: Path) -> None:
    env = default_environment()
    criterion = Criterion(name="answer_correct", description="the answer is the right one")
    mined = MinedCriterion(criterion=criterion, status="kept", accuracy=0.9, held_out_accuracy=None)
    report = CriteriaReport(
        criteria=[mined], mining_pairs=8, held_out_pairs=0, combined_held_out=None, plain_held_out=None
    )
    path = tmp_path / "criteria.json"
    path.write_text(report.model_dump_json())
    tasks = env.generate("chain_sum", 3, 0, seed=1)
    judge = LLMSampleJudge(_teacher(garbage_server.base_url, tracer), env.skills, path, tracer, Unscored())
    assert judge.score(1, tasks) == Unscored().score(1, tasks) == [None, None, None]
    attrs = _agent(tracer, "judge.criteria")
    assert attrs["fallback"] == "ranked without a criteria score" and "3 of 3" in attrs["error"]


def test_llm_criteria_manager_falls_back_to_the_library(garbage_server: Any, tracer: Tracer) -> None:
    library = [Criterion(name=f"seed_{i}", description=f"a seed criterion number {i}") for i in range(3)]
    sample = PairSample(question="What is 1 + 1?", answer="2")
    pairs = [
        PreferencePair(
            id="p0", skill="add", a=sample, b=sample.model_copy(update={"answer": "3"}), better="a"
        )
    ]
    teacher = _teacher(garbage_server.base_url, tracer)

    async def work(session: Any) -> tuple[Any, Any, Any]:
        manager = LLMManager(session, library, 0.7, fallback=LibraryManager(library))
        with tracer.span("agent", "criteria_manager.propose"):
            proposed = await manager.propose(pairs, 2)
        with tracer.span("agent", "criteria_manager.reflect"):
            revised = await manager.revise(library[0], 0.6, pairs)
            replaced = await manager.replace(library[1], 0.4, library[:1], {"seed_0", "seed_1"}, pairs)
        return proposed, revised, replaced

    proposed, revised, replaced = teacher.run(work)
    assert proposed == asyncio.run(LibraryManager(library).propose(pairs, 2)) == library[:2]
    assert revised is None  # the library manager never rewrites: the criterion is dropped and replaced
    assert replaced is None  # as before: an unusable reply replaces nothing (not the library's next)
    _said_fallback(_agent(tracer, "criteria_manager.propose"), "seed library")
    reflect = _agent(tracer, "criteria_manager.reflect")
    assert reflect["fallback"] == "no replacement" and reflect["fallbacks"] == 2
