"""Hedging never pays in the answer-extraction verifiers (reasoning-gym, JSONL, IFEval).

Each hostile completion below is tried through the public API (``load_environment`` then
``score``) and must score 0, no better than a single wrong answer. Under the former rule (the first
line, the first "answer is", the last box, and reasoning-gym's len(gold)/len(answer) credit for an
answer that merely contains the gold one) every kind of hack here scored above 0 on some task.
Well-formed answers keep scoring exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from teachloop.environments.base import Environment, Task
from teachloop.environments.reasoning_gym import contains_gold
from teachloop.environments.registry import load_environment

Hack = Callable[[Task, list[str]], str]

#: What a model trying its luck might write; ``guesses`` holds the gold answer among wrong ones.
HACKS: dict[str, Hack] = {
    "guesses, one per line": lambda t, guesses: "\n".join(guesses),
    "the gold answer first, then more guesses": lambda t, guesses: "\n".join(
        [t.answer, *[g for g in guesses if g != t.answer]]
    ),
    "guesses on one line": lambda t, guesses: " ".join(guesses),
    "several boxed answers, the gold one last": lambda t, guesses: " or ".join(
        f"\\boxed{{{g}}}" for g in [*[g for g in guesses if g != t.answer], t.answer]
    ),
    "several stated answers": lambda t, guesses: "\n".join(f"Answer: {g}" for g in guesses),
    "the gold answer stated first, then a different one": lambda t, guesses: (
        f"The answer is {t.answer}.\nThe answer is {next(g for g in guesses if g != t.answer)}."
    ),
    "the prompt repeated": lambda t, guesses: t.question,
    "the answer, then the prompt repeated": lambda t, guesses: f"{t.answer}\n{t.question}",
    "the prompt repeated, then the answer": lambda t, guesses: f"{t.question}\n{t.answer}",
    "a flood on one line, then the answer": lambda t, guesses: "x" * 3000 + " " + t.answer,
    "a flood of lines, then the answer": lambda t, guesses: "lorem ipsum\n" * 300 + t.answer,
}


def _numeric(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _wrong(task: Task, others: list[str]) -> str:
    """A single wrong answer of the right shape that does not contain the gold one."""
    shifted = [str(int(task.answer) + k) for k in range(1, 100)] if _numeric(task.answer) else []
    return next(
        w for w in shifted + others + ["unknown"] if w != task.answer and not contains_gold(w, task.answer)
    )


def _guesses(task: Task, others: list[str]) -> list[str]:
    if _numeric(task.answer):
        gold = int(task.answer)
        return [str(gold + k) for k in (-2, -1, 0, 1, 2)]
    return [*dict.fromkeys([*others[:2], task.answer, *others[2:4]])]


def _assert_no_better_than_wrong(env: Environment, tasks: list[Task]) -> None:
    for task in tasks:
        others = [t.answer for t in tasks if t.skill == task.skill and t.answer != task.answer]
        assert env.score(task, task.answer).solved
        wrong = env.score(task, _wrong(task, others)).reward
        for name, hack in HACKS.items():
            score = env.score(task, hack(task, _guesses(task, others)))
            assert score.reward == 0.0 and score.reward <= wrong, (name, task.skill, task.answer, score)


@pytest.fixture(scope="module")
def basics() -> Environment:
    return load_environment("reasoning-basics")


@pytest.mark.parametrize("hack", list(HACKS))
def test_reasoning_gym_hedges_score_no_better_than_a_wrong_answer(basics: Environment, hack: str) -> None:
    tasks = basics.tasks("dev", 4, 0)
    for task in tasks:
        others = [t.answer for t in tasks if t.skill == task.skill and t.answer != task.answer]
        score = basics.score(task, HACKS[hack](task, _guesses(task, others)))
        wrong = basics.score(task, _wrong(task, others)).reward
        assert score.reward == 0.0 and score.reward <= wrong, (task.skill, task.answer, score)


def test_reasoning_gym_well_formed_answers_score_as_before(basics: Environment) -> None:
    """The default environment's accuracy does not move for answers the student is taught to give."""
    for task in basics.tasks("dev", 10, 0) + basics.tasks("test", 10, 0):
        for form in ("{}", " {}.\n", "'{}'", "The answer is {}.", "Final answer: {}", "\\boxed{{{}}}"):
            assert basics.score(task, form.format(task.answer)).solved, (form, task.answer)


def test_a_wrong_answer_that_contains_the_gold_one_earns_nothing(basics: Environment) -> None:
    task = next(t for t in basics.tasks("dev", 10, 0) if t.skill == "aiw")
    padded = basics.score(task, f"{task.answer}{task.answer}0")
    assert padded.reward == 0.0 and "more than the answer" in padded.feedback


def _jsonl(tmp_path: Path, rows: list[dict[str, object]], **options: object) -> Environment:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return load_environment("jsonl", {"path": str(path), **options})


CAPITALS = {
    "France": "Paris",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Germany": "Berlin",
    "Austria": "Vienna",
    "Portugal": "Lisbon",
    "Greece": "Athens",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Poland": "Warsaw",
}


@pytest.mark.parametrize("scoring", ["exact", "numeric"])
def test_jsonl_hedges_score_no_better_than_a_wrong_answer(tmp_path: Path, scoring: str) -> None:
    if scoring == "exact":
        rows = [{"question": f"What is the capital of {c}?", "answer": a} for c, a in CAPITALS.items()]
    else:
        rows = [
            {"question": f"What is {a} times {b}?", "answer": a * b} for a in range(3, 7) for b in (7, 8, 9)
        ]
    env = _jsonl(tmp_path, rows, scoring=scoring)
    _assert_no_better_than_wrong(env, env.tasks("dev", 10, 0) + env.tasks("test", 10, 0))


@pytest.fixture(scope="module")
def ifeval() -> Environment:
    return load_environment("ifeval")


def test_ifeval_echoing_the_prompt_follows_nothing(ifeval: Environment) -> None:
    """The prompt holds the constraints' keywords, phrases and options: echoing it is not following it
    (``keywords:existence`` and others scored 1.0 for the prompt alone)."""
    for task in ifeval.tasks("dev", 2, 0):
        for echo in (
            task.question,
            f"{task.question}\n\n{task.answer}",
            f"{task.answer}\n{task.question.upper()}",
        ):
            score = ifeval.score(task, echo)
            assert score.reward == 0.0, (task.metadata["instruction_id_list"], echo, score)
        assert ifeval.score(task, task.answer).solved


def test_ifeval_listing_every_option_is_not_choosing_one(ifeval: Environment) -> None:
    task = ifeval.generate("detectable_format:constrained_response", 1, 0, 0)[0]
    assert ifeval.score(task, task.answer).solved
    every = "My answer is yes. My answer is no. My answer is maybe."
    assert ifeval.score(task, every).reward == 0.0
    assert ifeval.score(task, "My answer is no.").solved
