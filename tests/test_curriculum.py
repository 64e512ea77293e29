"""The curriculum's level choice (mastery up, out of reach down, bounds), its learning progress,
and the budget split of the ``curriculum`` policy; pure functions, no model."""

from __future__ import annotations

import pytest

from teachloop.agents.config import CurriculumConfig
from teachloop.agents.curriculum import (
    Curriculum,
    LevelResult,
    SkillLevel,
    apply_curriculum,
    choose_level,
    curriculum_weights,
    last_round_at_level,
    needed_probe,
)
from teachloop.agents.planner import Allocation, Plan
from teachloop.environments.base import Skill

SETTINGS = CurriculumConfig()
SKILL = Skill(name="sum", min_difficulty=0, max_difficulty=3, eval_difficulty=1)


def dev(solved: int, n: int = 24) -> LevelResult:
    return LevelResult(level=SKILL.eval_difficulty, n=n, solved=solved, source="dev")


def probe(level: int, solved: int, n: int = 12) -> LevelResult:
    return LevelResult(level=level, n=n, solved=solved, source="probe")


def test_a_mastered_level_steps_up_after_probing_the_next() -> None:
    measured = {1: dev(22)}
    assert needed_probe(SKILL, 1, measured, stalled=False, settings=SETTINGS) == 2
    measured[2] = probe(2, 3)
    assert needed_probe(SKILL, 1, measured, stalled=False, settings=SETTINGS) is None
    choice = choose_level(SKILL, 1, measured, SETTINGS, stalled=False, progress=4.0)
    assert (choice.level, choice.previous, choice.move) == (2, 1, "up")
    assert "mastered level 1" in choice.reason and "to level 2 (25% (3/12 probe))" in choice.reason
    assert choice.progress is None  # nothing measured at the new level yet
    assert [m.level for m in choice.measured] == [1, 2]


def test_the_hardest_level_mastered_stays_as_maintenance() -> None:
    measured = {1: dev(24), 3: probe(3, 12)}
    assert needed_probe(SKILL, 3, measured, stalled=False, settings=SETTINGS) is None
    choice = choose_level(SKILL, 3, measured, SETTINGS, stalled=False, progress=0.5)
    assert (choice.level, choice.move, choice.progress) == (3, "stay", 0.5)
    assert "the hardest: maintenance" in choice.reason


def test_out_of_reach_after_a_stalled_round_steps_down() -> None:
    measured = {1: dev(1)}
    assert needed_probe(SKILL, 1, measured, stalled=True, settings=SETTINGS) == 0
    measured[0] = probe(0, 5)
    choice = choose_level(SKILL, 1, measured, SETTINGS, stalled=True)
    assert (choice.level, choice.move) == (0, "down")
    assert "out of reach" in choice.reason and "to level 0 (42% (5/12 probe))" in choice.reason


def test_an_untrained_or_learning_skill_is_not_out_of_reach() -> None:
    low = {1: dev(0)}
    assert needed_probe(SKILL, 1, low, stalled=None, settings=SETTINGS) is None  # no probe, no cost
    untried = choose_level(SKILL, 1, low, SETTINGS, stalled=None)
    assert (untried.level, untried.move) == (1, "stay") and "not trained at yet" in untried.reason
    learning = choose_level(SKILL, 1, {1: dev(2)}, SETTINGS, stalled=False)
    assert (learning.level, learning.move) == (1, "stay") and "learning at level 1" in learning.reason


def test_no_step_down_onto_a_mastered_level() -> None:
    measured = {1: dev(0), 0: probe(0, 12)}
    choice = choose_level(SKILL, 1, measured, SETTINGS, stalled=True)
    assert (choice.level, choice.move) == (1, "stay")
    assert "level 0 is mastered" in choice.reason


def test_levels_never_leave_the_skill_range() -> None:
    bottom = Skill(name="b", min_difficulty=0, max_difficulty=2, eval_difficulty=0)
    choice = choose_level(
        bottom, 0, {0: LevelResult(level=0, n=24, solved=0, source="dev")}, SETTINGS, stalled=True
    )
    assert (choice.level, choice.move) == (0, "stay") and "the easiest" in choice.reason
    single = Skill(name="s")
    top = choose_level(single, 0, {0: LevelResult(level=0, n=24, solved=24, source="dev")}, SETTINGS)
    assert (top.level, top.move) == (0, "stay")
    clamped = choose_level(SKILL, 7, {3: probe(3, 6)}, SETTINGS, stalled=False)
    assert clamped.level == 3 and clamped.previous == 3


def test_above_the_evaluation_level_it_steps_back_when_dev_slips() -> None:
    measured = {1: dev(12), 2: probe(2, 6)}
    assert needed_probe(SKILL, 2, measured, stalled=False, settings=SETTINGS) is None  # level 1 is dev
    choice = choose_level(SKILL, 2, measured, SETTINGS, stalled=False)
    assert (choice.level, choice.move) == (1, "down") and "no longer mastered" in choice.reason
    # one item short of mastery on dev is within noise: it stays
    near = choose_level(SKILL, 2, {1: dev(20), 2: probe(2, 6)}, SETTINGS, stalled=False)
    assert near.move == "stay"


def test_an_unmeasured_current_level_is_probed_first() -> None:
    assert needed_probe(SKILL, 2, {1: dev(10)}, stalled=None, settings=SETTINGS) == 2


def test_learning_progress_at_the_trained_level() -> None:
    earlier = SkillLevel(
        skill="sum", level=2, previous=1, move="up", reason="", measured=[dev(22), probe(2, 3)], progress=None
    )
    progress, stalled = last_round_at_level(
        earlier, trained=50, now={1: dev(23), 2: probe(2, 9)}, settings=SETTINGS
    )
    assert progress == pytest.approx(100 * 0.5 / 50) and stalled is False
    flat, stalled = last_round_at_level(earlier, trained=50, now={2: probe(2, 3)}, settings=SETTINGS)
    assert flat == 0.0 and stalled is True
    kept = earlier.model_copy(update={"progress": 2.5})
    assert last_round_at_level(kept, 50, {2: probe(2, 12)}, SETTINGS, rolled_back=True) == (2.5, None)
    assert last_round_at_level(None, 50, {2: probe(2, 12)}, SETTINGS) == (None, None)


def _level(skill: str, level: int, accuracy: float, progress: float | None) -> SkillLevel:
    return SkillLevel(
        skill=skill,
        level=level,
        previous=level,
        move="stay",
        reason=f"{skill} reason",
        progress=progress,
        measured=[LevelResult(level=level, n=10, solved=round(10 * accuracy), source="dev")],
    )


def test_weights_follow_learning_progress_with_a_floor() -> None:
    skills = [_level("fast", 1, 0.5, 4.0), _level("flat", 1, 0.5, 0.0), _level("done", 1, 1.0, 0.0)]
    weights = curriculum_weights(skills, min_share=0.1, exploration=0.2)
    assert weights["fast"] > weights["flat"] > weights["done"] >= 0.1
    assert sum(weights.values()) == pytest.approx(1.0)
    assert curriculum_weights([_level("a", 0, 0.0, None), _level("b", 0, 0.0, None)], 0.1, 0.2) == {
        "a": 1.0,
        "b": 1.0,
    }
    moved = curriculum_weights([_level("a", 0, 0.0, 2.0), _level("b", 0, 0.0, None)], 0.0, 0.0)
    assert moved["a"] == pytest.approx(moved["b"])  # a new level gets the mean measured progress


def test_apply_curriculum_sets_levels_and_shares() -> None:
    plan = Plan(
        round=2,
        policy="curriculum",
        budget=100,
        allocations=[Allocation(skill=s, n=50, difficulty=1, reason="uniform") for s in ("fast", "flat")],
    )
    curriculum = Curriculum(round=2, skills=[_level("fast", 2, 0.5, 4.0), _level("flat", 0, 0.5, 1.0)])
    out = apply_curriculum(plan, curriculum, min_share=0.1, exploration=0.2)
    by = {a.skill: a for a in out.allocations}
    assert out.total == 100 and by["fast"].n > by["flat"].n
    assert (by["fast"].difficulty, by["flat"].difficulty) == (2, 0)
    assert by["fast"].reason.startswith("fast reason; progress 4.00 points per 100 examples")
