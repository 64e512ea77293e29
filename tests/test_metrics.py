import pytest

from teachloop.evals.metrics import ItemResult, summarize, wilson_interval


def test_wilson_interval_matches_reference_values() -> None:
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4)
    assert high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0
    assert wilson_interval(0, 20)[1] == pytest.approx(0.1611, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _item(skill: str, reward: float) -> ItemResult:
    return ItemResult(
        task_id=f"{skill}{reward}",
        skill=skill,
        question="q",
        answer="a",
        completion="c",
        parsed_answer="c",
        reward=reward,
        feedback="",
    )


def test_summarize_counts_only_full_reward_as_solved() -> None:
    results = [_item("a", 1.0), _item("a", 0.5), _item("b", 1.0), _item("b", 1.0)]
    s = summarize(3, "dev", results)
    assert s.round == 3
    assert s.skills["a"].solved == 1 and s.skills["a"].accuracy == 0.5
    assert s.skills["a"].mean_reward == 0.75
    assert s.skills["b"].accuracy == 1.0
    assert s.overall.n == 4 and s.overall.solved == 3
    assert s.skill_mean == 0.75
    assert s.overall.ci_low < 0.75 < s.overall.ci_high
