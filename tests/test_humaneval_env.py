"""HumanEval: the problems split into dev / test / training pool, completions run in the sandbox."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from teachloop.environments.base import Task, TaskGenerator
from teachloop.environments.humaneval import SKILL, HumanEvalEnvironment, extract_code
from teachloop.environments.registry import load_environment


@pytest.fixture(scope="module")
def env() -> HumanEvalEnvironment:
    loaded = load_environment("humaneval")
    assert isinstance(loaded.plugin, HumanEvalEnvironment)
    return loaded.plugin


def _add(env: HumanEvalEnvironment) -> Task:
    """HumanEval/53: add(x, y)."""
    return next(
        t
        for t in env.tasks("dev", 100, 0) + env.tasks("test", 100, 0) + env.generate(SKILL, 100, 0, 0)
        if t.metadata["task_id"] == "HumanEval/53"
    )


def test_the_164_problems_split_into_disjoint_dev_test_and_pool(env: HumanEvalEnvironment) -> None:
    assert isinstance(env, TaskGenerator)
    dev, test = env.tasks("dev", 100, 0), env.tasks("test", 100, 0)
    pool = env.generate(SKILL, 1000, 0, seed=3)
    assert (len(dev), len(test), len(pool)) == (41, 41, 82)
    ids = [{t.id for t in part} for part in (dev, test, pool)]
    assert len(ids[0] | ids[1] | ids[2]) == 164
    assert [t.id for t in env.tasks("dev", 5, 0)] == [t.id for t in env.tasks("dev", 5, 0)]


def test_answers_in_any_usual_shape_are_run_against_the_tests(env: HumanEvalEnvironment) -> None:
    task = _add(env)
    assert env.score(task, task.answer).solved
    assert env.score(task, "return x + y").solved  # body without indentation
    whole = "Here you go:\n```python\ndef add(x: int, y: int):\n    return x + y\n```"
    assert env.score(task, whole).solved
    assert extract_code(whole).startswith("def add")
    wrong = env.score(task, "    return x - y")
    assert not wrong.solved and "AssertionError" in wrong.feedback and "sandbox" in wrong.feedback
    assert not env.score(task, "    return (").solved


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("    while True:\n        pass", "cpu limit"),
        ("    import os\n    while True:\n        os.fork()", ""),
        ("    x = bytearray(8 * 2**30)\n    return x", "memory limit"),
        ("    import socket\n    socket.create_connection(('127.0.0.1', 1), timeout=1)", ""),
    ],
)
def test_hostile_completions_fail_without_harm(env: HumanEvalEnvironment, body: str, why: str) -> None:
    result = env.run(_add(env), body)
    assert not result.ok and why in result.reason()


def test_writing_outside_fails_and_leaves_nothing(env: HumanEvalEnvironment, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    body = textwrap.indent(f"open({str(target)!r}, 'w').write('x')\nreturn x + y", "    ")
    assert not env.score(_add(env), body).solved
    assert not target.exists()


@pytest.mark.slow
def test_every_canonical_solution_passes_in_the_sandbox(env: HumanEvalEnvironment) -> None:
    tasks = env.tasks("dev", 100, 0) + env.tasks("test", 100, 0) + env.generate(SKILL, 1000, 0, 0)
    failed = [t.id for t in tasks if not env.score(t, t.answer).solved]
    assert failed == []
