"""The forgetting guard's decisions on recorded dev results: the paired sign test per skill, the
Bonferroni level, what each action does with a flagged round, and what the next round replays; no model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from teachloop.agents.guard import check_skills, decide, sign_test
from teachloop.agents.planner import Allocation, Plan
from teachloop.evals.metrics import ItemResult
from teachloop.loop.config import TeacherConfig
from teachloop.loop.nodes.data import replay_fractions


def _results(solved: dict[str, list[int]]) -> list[ItemResult]:
    """Dev results: per skill, which items (0/1 in a fixed order) the student solved."""
    return [
        ItemResult(
            task_id=f"{skill}-{i}",
            skill=skill,
            question=f"{skill} {i}",
            answer="1",
            completion="1" if ok else "0",
            parsed_answer=None,
            reward=float(ok),
            feedback="",
        )
        for skill, items in solved.items()
        for i, ok in enumerate(items)
    ]


def test_sign_test_reference_values() -> None:
    assert sign_test(0, 0) == 1.0 and sign_test(0, 5) == 1.0
    assert sign_test(7, 0) == pytest.approx(1 / 128)
    assert sign_test(8, 1) == pytest.approx(10 / 512)
    assert sign_test(3, 3) == pytest.approx(42 / 64)


def test_a_collapsed_skill_is_flagged_and_the_round_rolled_back() -> None:
    # aiw at 68% -> 20% on 24 items (docs/results.md), the other skill steady with some churn
    before = _results({"aiw": [1] * 16 + [0] * 8, "sum": [1] * 12 + [0] * 12})
    after = _results({"aiw": [1] * 4 + [0] * 12 + [1] + [0] * 7, "sum": [0] * 2 + [1] * 12 + [0] * 10})
    checks = check_skills(before, after, alpha=0.05)
    aiw, total = checks
    assert (aiw.skill, aiw.n, aiw.lost, aiw.gained) == ("aiw", 24, 12, 1)
    assert aiw.before == pytest.approx(16 / 24) and aiw.after == pytest.approx(5 / 24)
    assert aiw.dropped and aiw.p_value < 0.025
    assert not total.dropped and (total.lost, total.gained) == (2, 2)
    decision = decide(2, 1, checks, 0.05, "rollback", trained="rounds/2/model", kept="rounds/1/model")
    assert not decision.accepted and decision.action == "rolled_back"
    assert decision.student == "rounds/1/model" and decision.dropped == ["aiw"]
    assert decision.skill_alpha == pytest.approx(0.025)
    assert "aiw 67% -> 21% (12 lost, 1 gained" in decision.reason and "back to round 1" in decision.reason


def test_noise_sized_changes_pass() -> None:
    before = _results({"a": [1] * 12 + [0] * 12, "b": [1] * 20 + [0] * 4})
    after = _results({"a": [0] * 3 + [1] * 9 + [0] * 12, "b": [1] * 18 + [0] * 6})  # 3 and 2 lost
    checks = check_skills(before, after, alpha=0.05)
    assert not any(c.dropped for c in checks)
    decision = decide(1, 0, checks, 0.05, "rollback", trained="new", kept="old")
    assert decision.accepted and decision.action == "accepted" and decision.student == "new"


def test_bonferroni_makes_more_skills_need_more_evidence() -> None:
    # 7 lost of 24 with nothing gained: p = 1/128, flagged among 5 skills (0.01), not among 7 (0.0071)
    lost = [0] * 7 + [1] * 17
    five = {f"s{i}": [1] * 24 for i in range(5)}
    seven = {f"s{i}": [1] * 24 for i in range(7)}
    assert check_skills(_results(five), _results(five | {"s0": lost}), 0.05)[0].dropped
    assert not check_skills(_results(seven), _results(seven | {"s0": lost}), 0.05)[0].dropped


def test_warn_keeps_the_round_and_items_are_matched_by_id() -> None:
    before = _results({"a": [1] * 10})
    after = _results({"a": [0] * 10}) + _results({"new": [0] * 5})  # a skill not in before: not compared
    checks = check_skills(before, after, alpha=0.05)
    assert [c.skill for c in checks] == ["a"] and checks[0].dropped
    decision = decide(3, 2, checks, 0.05, "warn", trained="new", kept="old")
    assert decision.accepted and decision.action == "warned" and decision.student == "new"
    assert "kept (teacher.guard.action=warn)" in decision.reason


def test_repair_keeps_a_round_that_gained_overall_and_undoes_one_that_did_not() -> None:
    # the default run's round 2 (seed 0, bf16): aiw collapsed while the other skills learnt
    before = _results({"aiw": [1] * 15 + [0] * 9, "sum": [0] * 24, "fam": [1] * 4 + [0] * 20})
    learnt = _results(
        {"aiw": [0] * 10 + [1] * 5 + [0] * 8 + [1], "sum": [1] * 10 + [0] * 14, "fam": [1] * 12 + [0] * 12}
    )
    checks = check_skills(before, learnt, alpha=0.05)
    assert [c.skill for c in checks if c.dropped] == ["aiw"]
    kept = decide(2, 1, checks, 0.05, "repair", trained="rounds/2/model", kept="rounds/1/model")
    assert kept.accepted and kept.action == "repaired" and kept.student == "rounds/2/model"
    assert kept.dropped == ["aiw"] and "19 dev items gained, 10 lost" in kept.reason
    # the same collapse in a round that taught nothing else is undone
    idle = _results({"aiw": [0] * 10 + [1] * 5 + [0] * 8 + [1], "sum": [0] * 24, "fam": [1] * 4 + [0] * 20})
    undone = decide(2, 1, check_skills(before, idle, 0.05), 0.05, "repair", trained="new", kept="old")
    assert not undone.accepted and undone.action == "rolled_back" and undone.student == "old"
    assert "1 dev items gained, 10 lost" in undone.reason
    # rollback undoes both
    assert not decide(2, 1, checks, 0.05, "rollback", trained="new", kept="old").accepted


def test_the_round_after_a_repair_replays_the_dropped_skills_only() -> None:
    before = _results({"aiw": [1] * 12 + [0] * 12, "sum": [0] * 24})
    after = _results({"aiw": [0] * 24, "sum": [1] * 20 + [0] * 4})
    repaired = decide(1, 0, check_skills(before, after, 0.05), 0.05, "repair", trained="new", kept="old")
    rolled = decide(1, 0, check_skills(before, after, 0.05), 0.05, "rollback", trained="new", kept="old")
    teacher = TeacherConfig(replay_fraction=0.1)
    plan = Plan(
        round=2,
        policy="uniform",
        budget=20,
        allocations=[Allocation(skill=s, n=10, difficulty=0, reason="") for s in ("aiw", "sum")],
    )
    ctx = SimpleNamespace(config=SimpleNamespace(teacher=teacher))
    assert replay_fractions({"guards": []}, ctx, plan) == {"aiw": 0.1, "sum": 0.1}  # type: ignore[arg-type]
    assert replay_fractions({"guards": [repaired]}, ctx, plan) == {"aiw": 0.25, "sum": 0.1}  # type: ignore[arg-type]
    assert replay_fractions({"guards": [rolled]}, ctx, plan) == {"aiw": 0.25, "sum": 0.25}  # type: ignore[arg-type]
