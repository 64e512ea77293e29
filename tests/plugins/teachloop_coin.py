"""A third-party environment for recipe tests: its verifier passes about half of any model's
answers (those whose length has the task's parity), so even a tiny random model sometimes but
not always solves a task, which is what GRPO needs to have anything to learn from.

Installed for a test by putting this directory on PYTHONPATH: the ``.dist-info`` beside this
file declares the entry point, exactly as ``pip install`` would.
"""

from __future__ import annotations

from typing import Any

from teachloop.environments.base import Score, Skill, Split, Task
from teachloop.foundation.types import Message


class CoinEnvironment:
    def __init__(self) -> None:
        self.name = "coin"
        self.skills = [
            Skill(name="coin", description="answer with as many characters as the task's parity asks")
        ]

    def _tasks(self, kind: str, n: int, seed: int) -> list[Task]:
        return [
            Task(
                skill="coin",
                question=f"{kind} toss {seed}-{i}: odd or even?",
                answer=("even", "odd")[i % 2],
                metadata={"parity": i % 2},
            )
            for i in range(n)
        ]

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        return self._tasks(split, n, seed)

    def prompt(self, task: Task) -> list[Message]:
        return [
            Message(role="system", content="Answer in one word."),
            Message(role="user", content=task.question),
        ]

    def score(self, task: Task, completion: str) -> Score:
        answer = completion.strip()
        return Score(reward=float(len(answer) % 2 == task.metadata["parity"]), parsed_answer=answer)

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        return self._tasks("train", n, seed)


def load_environment(**options: Any) -> CoinEnvironment:
    return CoinEnvironment()
