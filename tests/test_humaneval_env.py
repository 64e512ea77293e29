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


def _problem(env: HumanEvalEnvironment, task_id: str) -> Task:
    return next(
        t
        for t in env.tasks("dev", 100, 0) + env.tasks("test", 100, 0) + env.generate(SKILL, 100, 0, 0)
        if t.metadata["task_id"] == task_id
    )


def _add(env: HumanEvalEnvironment) -> Task:
    """HumanEval/53: add(x, y)."""
    return _problem(env, "HumanEval/53")


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


def _body(code: str) -> str:
    return textwrap.indent(textwrap.dedent(code).strip("\n"), "    ")


#: Completions of add(x, y) that try to pass without adding (or add only where a forbidden move
#: works). Those marked "was 1.0" scored 1.0, "all tests passed", when the exit status decided.
ADD_HACKS = {
    "os._exit(0) (was 1.0)": _body("import os\nos._exit(0)"),
    "raise SystemExit(0) (was 1.0)": _body("raise SystemExit(0)"),
    "sys.exit() (was 1.0)": _body("import sys\nsys.exit()"),
    "exit at module level (was 1.0)": "def add(x, y):\n    return 0\n\nimport os\nos._exit(0)\n",
    "raise KeyboardInterrupt": _body("raise KeyboardInterrupt"),
    "kill itself": _body("import signal\nsignal.raise_signal(signal.SIGKILL)"),
    "close stdout and stderr, exit 0 (was 1.0)": _body(
        "import os, sys\nsys.stdout.close()\nos.close(1)\nos.close(2)\nos._exit(0)"
    ),
    "redirect stdout, print a pass, exit 0 (was 1.0)": _body(
        "import io, os, sys\nprint('all tests passed')\nsys.stdout = io.StringIO()\nos._exit(0)"
    ),
    "forge a result on every fd, exit 0 (was 1.0)": _body(
        """
        import os
        for fd in range(3, 64):
            try:
                os.write(fd, b"0" * 32)
            except OSError:
                pass
        os._exit(0)
        """
    ),
    "an answer equal to anything (was 1.0)": _body(
        """
        class Anything:
            def __eq__(self, other):
                return True
        return Anything()
        """
    ),
    "define check itself": "def add(x, y):\n    return 0\n\ndef check(candidate):\n    pass\n",
    "read the tests' source (was 1.0)": _body(
        """
        try:
            visible = "def check" in open("main.py").read()
        except OSError:
            visible = False
        return x + y if visible else x - y
        """
    ),
    "walk up to the tests' frame (was 1.0)": _body(
        """
        import sys
        try:
            caller = sys._getframe(1).f_globals
        except ValueError:
            caller = {}
        return x + y if "check" in caller else x - y
        """
    ),
    "reach the tests' frame through a traceback": _body(
        """
        try:
            raise RuntimeError
        except RuntimeError as err:
            caller = err.__traceback__.tb_frame.f_back.f_globals
        return x + y if "check" in caller else x - y
        """
    ),
    "trace the tests (was 1.0)": _body(
        """
        import sys
        try:
            sys.settrace(None)  # a tracer sees every frame, the tests' included
            traced = True
        except Exception:
            traced = False
        return x + y if traced else x - y
        """
    ),
    "read its own memory (was 1.0)": _body(
        """
        try:
            open("/proc/self/mem", "rb").close()
            readable = True
        except OSError:
            readable = False
        return x + y if readable else x - y
        """
    ),
    "fork, let the child answer, exit 0 (was 1.0)": _body(
        """
        import os
        pid = os.fork()
        if pid == 0:
            return x + y
        os.waitpid(pid, 0)
        os._exit(0)
        """
    ),
}


@pytest.mark.parametrize("hack", list(ADD_HACKS))
def test_a_completion_that_games_the_harness_scores_0(env: HumanEvalEnvironment, hack: str) -> None:
    score = env.score(_add(env), ADD_HACKS[hack])
    assert score.reward == 0.0 and "all tests passed" not in score.feedback, score.feedback


@pytest.mark.parametrize(
    ("task_id", "body"),
    [
        # truncate_number's tests compare with abs(...) < 1e-6 (was 1.0)
        ("HumanEval/2", "import builtins\nbuiltins.abs = lambda value: 0\nreturn 0.5"),
        # find_zero's tests check math.fabs(poly(...)) < 1e-4 (was 1.0)
        ("HumanEval/32", "import math\nmath.fabs = lambda value: 0.0\nreturn 0.0"),
    ],
)
def test_patching_what_the_tests_use_changes_nothing_for_them(
    env: HumanEvalEnvironment, task_id: str, body: str
) -> None:
    task = _problem(env, task_id)
    assert env.score(task, task.answer).solved
    score = env.score(task, _body(body))
    assert score.reward == 0.0, score.feedback


def test_ordinary_python_still_passes(env: HumanEvalEnvironment) -> None:
    body = _body(
        """
        import sys
        from collections import namedtuple
        from typing import TypeVar
        sys.setrecursionlimit(2000)
        Pair = namedtuple("Pair", "x y")
        T = TypeVar("T")
        print("adding", x, y)
        def helper(pair):
            return pair.x + pair.y
        return helper(Pair(x, y))
        """
    )
    assert env.score(_add(env), body).solved
    whole = "import math\n\ndef add(x, y):\n    return int(math.fsum([x, y]))\n"
    assert env.score(_add(env), whole).solved


def test_a_task_without_tests_scores_0(env: HumanEvalEnvironment) -> None:
    task = Task(skill=SKILL, question="def f():\n", answer="    return 1\n")
    score = env.score(task, task.answer)
    assert score.reward == 0.0 and "no tests" in score.feedback


@pytest.mark.slow
def test_every_canonical_solution_passes_in_the_sandbox(env: HumanEvalEnvironment) -> None:
    tasks = env.tasks("dev", 100, 0) + env.tasks("test", 100, 0) + env.generate(SKILL, 1000, 0, 0)
    failed = [t.id for t in tasks if not env.score(t, t.answer).solved]
    assert failed == []
