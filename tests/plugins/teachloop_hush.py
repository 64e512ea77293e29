"""A third-party environment for the curriculum and forgetting-guard tests, with a skill the
tiny random test model already has and one it lacks.

- ``hush``: reply with nothing at all. The tiny random Llama answers every prompt with line
  breaks only, so it starts at 100% here, and an update that makes it say anything loses the
  skill: a forgetting the guard can see with a model that has learnt nothing else.
- ``echo``: repeat the task's words, one more word per difficulty level (levels 0-2, evaluated at
  1). The tiny model starts at 0% at every level, so a curriculum sees it stall there.

Installed for a test by putting this directory on PYTHONPATH: the ``.dist-info`` beside this
file declares the entry point, exactly as ``pip install`` would.
"""

from __future__ import annotations

import random
from typing import Any

from teachloop.environments.base import Score, Skill, Split, Task
from teachloop.foundation.types import Message

WORDS = ["red", "green", "blue", "cat", "dog", "sun", "moon", "tree", "rock", "fish", "bird", "rain"]
EVAL_LEVEL = 1


class HushEnvironment:
    def __init__(self) -> None:
        self.name = "hush"
        self.skills = [
            Skill(name="hush", description="reply with nothing at all"),
            Skill(
                name="echo",
                description="repeat the words after 'say:', one more word per level",
                min_difficulty=0,
                max_difficulty=2,
                eval_difficulty=EVAL_LEVEL,
            ),
        ]

    def _task(self, skill: str, kind: str, seed: int, index: int, level: int) -> Task:
        if skill == "hush":
            return Task(skill="hush", question=f"{kind} {seed}-{index}: stay silent.", answer="")
        rng = random.Random(f"{kind}-{seed}-{index}-{level}")
        words = " ".join(rng.choice(WORDS) for _ in range(level + 1))
        return Task(
            skill="echo", question=f"{kind} {seed}-{index} say: {words}", answer=words, difficulty=level
        )

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        return [self._task(s.name, split, seed, i, EVAL_LEVEL) for s in self.skills for i in range(n)]

    def prompt(self, task: Task) -> list[Message]:
        return [
            Message(role="system", content="Do exactly what the user asks."),
            Message(role="user", content=task.question),
        ]

    def score(self, task: Task, completion: str) -> Score:
        answer = completion.strip()
        solved = answer == "" if task.skill == "hush" else answer.lower() == task.answer
        return Score(reward=float(solved), parsed_answer=answer)

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        level = min(max(difficulty, 0), 2)
        return [self._task(skill, "train", seed, i, level) for i in range(n)]


def load_environment(**options: Any) -> HushEnvironment:
    return HushEnvironment()
