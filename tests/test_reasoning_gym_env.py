import re

import pytest

from teachloop.environments.base import Environment, TaskGenerator, normalize_question
from teachloop.environments.reasoning_gym import (
    DEFAULT_SKILLS,
    ReasoningGymEnvironment,
    SkillSpec,
    default_environment,
)
from teachloop.environments.reasoning_gym import (
    load_environment as load_rg,
)
from teachloop.environments.registry import load_environment
from teachloop.foundation.errors import ConfigError


def test_default_environment_is_registered_and_has_five_learnable_skills() -> None:
    env = load_environment("reasoning-basics")
    assert isinstance(env, Environment) and isinstance(env, TaskGenerator)
    assert len(env.skills) >= 5
    assert {s.name for s in env.skills} == {s.skill_name for s in DEFAULT_SKILLS}


def test_dev_and_test_are_deterministic_and_disjoint() -> None:
    env = default_environment()
    dev = env.tasks("dev", 30, seed=0)
    test = env.tasks("test", 40, seed=0)
    assert [t.id for t in dev] == [t.id for t in env.tasks("dev", 30, seed=0)]
    assert len(dev) == 30 * len(env.skills) and len(test) == 40 * len(env.skills)
    dev_q = {normalize_question(t.question) for t in dev}
    test_q = {normalize_question(t.question) for t in test}
    assert not dev_q & test_q
    # a larger dev split still never meets the test split
    assert not {normalize_question(t.question) for t in env.tasks("dev", 80, seed=0)} & test_q


def test_gold_answers_pass_the_verifier_and_wrong_answers_fail() -> None:
    env = default_environment()
    for task in env.tasks("dev", 5, seed=1):
        assert env.score(task, task.answer).solved, task
        assert env.score(task, f"The answer is {task.answer}.").solved, task
        assert not env.score(task, "I do not know").solved


def test_generate_makes_unique_tasks_at_the_requested_level() -> None:
    env = default_environment()
    easy = env.generate("chain_sum", 50, difficulty=0, seed=3)
    assert len(easy) == 50 and len({t.question for t in easy}) == 50
    assert all(t.difficulty == 0 for t in easy)
    # level 0 of chain_sum is one-digit numbers
    assert all(len(n) == 1 for t in easy for n in re.findall(r"\d+", t.question))
    assert [t.id for t in env.generate("chain_sum", 5, 0, seed=3)] == [t.id for t in easy[:5]]
    assert env.generate("chain_sum", 5, difficulty=99, seed=3)[0].difficulty == 2


def test_any_reasoning_gym_task_list_works_with_curriculum_levels() -> None:
    env = load_rg(tasks="gcd, basic_arithmetic")
    assert [s.name for s in env.skills] == ["gcd", "basic_arithmetic"]
    assert all(s.max_difficulty >= 1 for s in env.skills)
    task = env.tasks("test", 2, seed=0)[0]
    assert env.score(task, task.answer).solved


def test_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="unknown reasoning-gym task"):
        ReasoningGymEnvironment("x", [SkillSpec(task="no_such_task")])
    with pytest.raises(ConfigError, match="needs tasks"):
        load_rg(tasks="")
    with pytest.raises(ConfigError, match="no skill"):
        default_environment().generate("nope", 1, 0, 0)
    with pytest.raises(ConfigError, match="unknown environment 'nope'"):
        load_environment("nope")


def test_a_verifier_that_rejects_malformed_answers_scores_zero() -> None:
    env = load_rg(tasks="prime_factorization")
    task = env.tasks("dev", 1, seed=0)[0]
    score = env.score(task, "To find the prime factorization we start by")
    assert score.reward == 0.0 and "unparseable" in score.feedback
