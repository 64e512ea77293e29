"""Instruction following: composed prompts per constraint, gold responses that pass IFEval's own
checkers, held-out topics for evaluation, partial credit per constraint."""

from __future__ import annotations

import pytest

from teachloop.environments.base import TaskGenerator
from teachloop.environments.ifeval import CONSTRAINTS, INSTRUCTION_DICT, IFEvalEnvironment, check
from teachloop.environments.registry import load_environment
from teachloop.foundation.errors import ConfigError


@pytest.fixture(scope="module")
def env() -> IFEvalEnvironment:
    loaded = load_environment("ifeval")
    assert isinstance(loaded, TaskGenerator) and isinstance(loaded.plugin, IFEvalEnvironment)
    return loaded.plugin


def test_each_constraint_type_is_a_skill(env: IFEvalEnvironment) -> None:
    assert [s.name for s in env.skills] == list(CONSTRAINTS)
    assert len(env.skills) >= 12
    picked = load_environment("ifeval", {"skills": "punctuation:no_comma, startend:quotation"})
    assert [s.name for s in picked.skills] == ["punctuation:no_comma", "startend:quotation"]


def test_splits_are_deterministic_disjoint_and_use_held_out_topics(env: IFEvalEnvironment) -> None:
    dev, test = env.tasks("dev", 6, 0), env.tasks("test", 6, 0)
    assert len(dev) == len(test) == 6 * len(env.skills)
    assert [t.id for t in dev] == [t.id for t in env.tasks("dev", 6, 0)]
    assert not {t.question for t in dev} & {t.question for t in test}
    trained = [t for s in env.skills for t in env.generate(s.name, 10, 2, seed=4)]
    assert {t.metadata["topic"] for t in dev + test} <= set(env.eval_topics)
    assert {t.metadata["topic"] for t in trained} <= set(env.train_topics)
    assert not set(env.eval_topics) & set(env.train_topics)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_generated_gold_responses_follow_every_constraint(env: IFEvalEnvironment, level: int) -> None:
    for skill in CONSTRAINTS:
        tasks = env.generate(skill, 8, level, seed=level)
        assert len(tasks) == 8 and len({t.question for t in tasks}) == 8
        for task in tasks:
            assert task.metadata["instruction_id_list"][0] == skill
            paired = level == 2 and skill != "detectable_format:constrained_response"  # conflicts with all
            assert len(task.metadata["instruction_id_list"]) == (2 if paired else 1)
            assert env.score(task, task.answer).solved, (task.question, task.answer)


def test_only_constraints_that_need_downloads_or_other_languages_are_left_out() -> None:
    left_out = set(INSTRUCTION_DICT) - set(CONSTRAINTS)
    assert left_out == {
        "length_constraints:number_sentences",  # NLTK's punkt sentence model (a download)
        "change_case:capital_word_frequency",  # NLTK's word tokenizer (a download)
        "language:response_language",  # answers in other languages
    }


def test_violations_are_caught_with_partial_credit(env: IFEvalEnvironment) -> None:
    task = env.generate("punctuation:no_comma", 1, 0, seed=0)[0]
    assert not env.score(task, task.answer.replace(".", ",", 1)).solved
    quoted = env.generate("startend:quotation", 1, 0, seed=0)[0]
    assert not env.score(quoted, quoted.answer.strip('"')).solved
    repeated = env.generate("combination:repeat_prompt", 1, 0, seed=0)[0]
    assert not env.score(repeated, repeated.answer.split("\n\n", 1)[1]).solved
    first = env.generate("length_constraints:nth_paragraph_first_word", 1, 1, seed=0)[0]
    assert not env.score(first, first.answer.replace("\n\n", " ")).solved
    pair = next(
        t
        for t in env.generate("change_case:english_lowercase", 80, 2, seed=1)
        if t.metadata["instruction_id_list"][1] == "punctuation:no_comma"
    )
    half = env.score(pair, pair.answer.upper())  # no commas, but not lowercase
    assert half.reward == 0.5 and "change_case:english_lowercase" in half.feedback
    assert check(pair, pair.answer) == [
        ("change_case:english_lowercase", True),
        ("punctuation:no_comma", True),
    ]
    assert env.score(pair, "").reward == 0.0


def test_unknown_constraints_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown constraint"):
        load_environment("ifeval", {"skills": "keywords:nonsense"})
    with pytest.raises(ConfigError, match="eval_level"):
        load_environment("ifeval", {"eval_level": 5})
