import pytest

from teachloop.agents.diagnoser import diagnose
from teachloop.agents.feedback import FeedbackView, feedback_view
from teachloop.agents.planner import plan_round, split_budget
from teachloop.agents.scorer import combine, rescored, score_candidates
from teachloop.agents.selector import select, sft_rows
from teachloop.environments.base import Skill, normalize_question
from teachloop.environments.reasoning_gym import default_environment
from teachloop.evals.metrics import EvalSummary, ItemResult, summarize

SKILLS = [Skill(name=n) for n in ("a", "b", "c")]


def _results(round_: int, accuracy: dict[str, float], n: int = 10) -> list[ItemResult]:
    out = []
    for skill, acc in accuracy.items():
        for i in range(n):
            reward = 1.0 if i < round(acc * n) else 0.0
            out.append(
                ItemResult(
                    task_id=f"{skill}{i}",
                    skill=skill,
                    question=f"{skill} q{i}",
                    answer="1",
                    completion="wrong" if reward == 0 else "1",
                    parsed_answer=None,
                    reward=reward,
                    feedback="",
                )
            )
    return out


def _view(summary: EvalSummary, results: list[ItemResult] | None = None) -> FeedbackView:
    return feedback_view("skill_list", summary, results or [])


def test_diagnose_ranks_by_deficit_and_tracks_change() -> None:
    before = summarize(0, "dev", _results(0, {"a": 0.0, "b": 0.5, "c": 0.9}))
    results = _results(1, {"a": 0.2, "b": 0.4, "c": 0.9})
    report = diagnose(_view(summarize(1, "dev", results), results), _view(before))
    assert [w.skill for w in report.skills] == ["a", "b", "c"]
    a = report.weakness("a")
    assert a is not None and a.deficit == 0.8 and a.severity == "high"
    assert a.change is not None and abs(a.change - 0.2) < 1e-9
    b = report.weakness("b")
    assert b is not None and b.change is not None and b.change < 0
    assert len(a.evidence) == 3 and a.evidence[0].got == "wrong"
    assert report.weakness("c").evidence[0].expected == "1"  # type: ignore[union-attr]


def test_split_budget_is_exact_and_proportional() -> None:
    # 2.5, 2.5 and 5: c gets exactly its half, the tie over the odd unit goes to a or b.
    assert split_budget({"a": 1, "b": 1, "c": 2}, 10) in ({"a": 3, "b": 2, "c": 5}, {"a": 2, "b": 3, "c": 5})
    shares = split_budget({"a": 0.7, "b": 0.2, "c": 0.1}, 100)
    assert shares == {"a": 70, "b": 20, "c": 10}
    assert split_budget({"a": 0, "b": 0}, 5) in ({"a": 3, "b": 2}, {"a": 2, "b": 3})


def test_deficit_policy_targets_weak_skills_but_keeps_a_floor() -> None:
    results = _results(0, {"a": 0.0, "b": 0.5, "c": 1.0})
    report = diagnose(_view(summarize(0, "dev", results)))
    plan = plan_round(report, SKILLS, budget=300, policy="deficit", min_share=0.1)
    n = {a.skill: a.n for a in plan.allocations}
    assert plan.round == 1 and plan.total == 300
    assert n["a"] > n["b"] > n["c"] >= 30
    uniform = plan_round(report, SKILLS, budget=300, policy="uniform", min_share=0.1)
    assert {a.n for a in uniform.allocations} == {100}
    assert all("deficit" in a.reason for a in plan.allocations)


def test_scoring_flags_duplicates_contamination_and_bad_gold() -> None:
    env = default_environment()
    tasks = env.generate("aiw", 6, 0, seed=5)
    bad = tasks[0].model_copy(update={"skill": "not_a_skill", "id": ""})  # a generator bug
    trained = {normalize_question(tasks[1].question)}
    evals = {normalize_question(tasks[2].question)}
    scored = score_candidates(env, [bad, *tasks[1:], tasks[3]], trained, evals)
    flags = [(s.verified, s.duplicate, s.contaminated, s.usable) for s in scored]
    assert flags[0] == (False, False, False, False)
    assert flags[1] == (True, True, False, False)
    assert flags[2] == (True, False, True, False)
    assert flags[3] == (True, False, False, True)
    assert flags[-1] == (True, True, False, False)  # repeated within the round


def test_select_fills_allocations_with_replay() -> None:
    env = default_environment()
    report = diagnose(_view(summarize(0, "dev", _results(0, {"aiw": 0.0, "number_sequence": 0.0}))))
    skills = [s for s in env.skills if s.name in ("aiw", "number_sequence")]
    plan = plan_round(report, skills, budget=20, policy="uniform", min_share=0.1)
    fresh = [t for s in ("aiw", "number_sequence") for t in env.generate(s, 12, 0, seed=1)]
    scored = score_candidates(env, fresh, set(), set())
    pool = env.generate("aiw", 5, 0, seed=99)
    chosen = select(scored, plan, pool, replay={"aiw": 0.2, "number_sequence": 0.2}, seed=0)
    assert len(chosen) == 20
    assert sum(c.origin == "replay" for c in chosen) == 2
    assert {c.task.skill for c in chosen if c.origin == "replay"} == {"aiw"}
    assert select(scored, plan, pool, {"aiw": 0.2, "number_sequence": 0.2}, seed=0) == chosen
    only_sequences = select(scored, plan, pool, {"number_sequence": 0.4}, seed=0)
    assert not any(c.origin == "replay" for c in only_sequences)  # aiw's share is 0: all fresh
    rows = sft_rows(env, chosen)
    assert rows[0]["completion"] == [{"role": "assistant", "content": chosen[0].task.answer}]
    assert rows[0]["prompt"][-1]["content"] == chosen[0].task.question


def test_bandit_follows_learning_progress_and_starts_uniform() -> None:
    before = summarize(0, "dev", _results(0, {"a": 0.0, "b": 0.0, "c": 0.0}))
    first = plan_round(diagnose(_view(before)), SKILLS, budget=300, policy="bandit", min_share=0.1)
    assert {a.n for a in first.allocations} == {100}
    assert "no progress measured yet" in first.allocations[0].reason
    # a moved 60 points, b 10, c not at all, each on 100 examples
    after = summarize(1, "dev", _results(1, {"a": 0.6, "b": 0.1, "c": 0.0}))
    second = plan_round(
        diagnose(_view(after), _view(before)),
        SKILLS,
        budget=300,
        policy="bandit",
        min_share=0.1,
        previous=first,
    )
    n = {a.skill: a.n for a in second.allocations}
    assert second.total == 300
    assert n["a"] > n["b"] > n["c"] >= 30
    assert "points per 100 examples" in second.allocations[0].reason
    # forgetting counts as progress too: a skill that dropped gets data back
    later = summarize(2, "dev", _results(2, {"a": 0.2, "b": 0.1, "c": 0.0}))
    third = plan_round(
        diagnose(_view(later), _view(after)),
        SKILLS,
        budget=300,
        policy="bandit",
        min_share=0.1,
        previous=second,
    )
    assert max(third.allocations, key=lambda a: a.n).skill == "a"


def test_scores_combine_measured_parts_and_selection_follows_them() -> None:
    assert combine(None, None, 1.0, 1.0) == 1.0  # nothing measured: every usable sample ties
    assert combine(0.8, None, 1.0, 1.0) == 0.8
    assert combine(0.8, 0.5, 3.0, 1.0) == (3 * 0.8 + 0.5) / 4
    env = default_environment()
    tasks = env.generate("aiw", 200, 0, seed=3)
    scored = [
        rescored(s, quality=(i % 10) / 9, pass_rate=None, quality_weight=1.0, difficulty_weight=1.0)
        for i, s in enumerate(score_candidates(env, tasks, set(), set()))
    ]
    assert all(s.usable for s in scored)
    skill = [s for s in env.skills if s.name == "aiw"]
    plan = plan_round(
        diagnose(_view(summarize(0, "dev", _results(0, {"aiw": 0.0})))), skill, 40, "uniform", 0.0
    )

    def mean_score(how: str, **kw: float) -> float:
        chosen = {c.task.id for c in select(scored, plan, [], {}, seed=0, how=how, **kw)}  # type: ignore[arg-type]
        picked = [s.score for s in scored if s.task.id in chosen]
        assert len(picked) == 40
        return sum(picked) / 40

    base = sum(s.score for s in scored) / len(scored)
    assert mean_score("top_k") == pytest.approx(
        sum(sorted((s.score for s in scored), reverse=True)[:40]) / 40
    )
    sampled = mean_score("sample", temperature=0.25)
    assert base + 0.15 < sampled < 1.0  # leans to high scores, but not a hard cut
    assert mean_score("sample", temperature=100.0) < sampled  # a high temperature is near uniform
    assert mean_score("threshold", threshold=0.5) >= 0.5
    assert select(scored, plan, [], {}, 0, "sample", temperature=0.25) == select(
        scored, plan, [], {}, 0, "sample", temperature=0.25
    )
