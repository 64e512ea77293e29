"""Convert between units: a complete teachloop environment in one small file.

Everything a teachloop environment needs is here: skills, seeded dev and test tasks with gold
answers, the chat prompt, a verifier, and a generator of new verified tasks (so the offline
heuristic teacher can make training data). Splits are kept apart by hashing each question into a
bucket: a quarter goes to test, a quarter to dev, the rest to training, so a generated question can
never be a dev or test question.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from teachloop.environments.answer import extract_answer
from teachloop.environments.base import Score, Skill, Split, Task
from teachloop.foundation.errors import ConfigError
from teachloop.foundation.types import Message

#: skill -> (from unit, to unit, factor)
CONVERSIONS: dict[str, tuple[str, str, int]] = {
    "km_to_m": ("kilometres", "metres", 1000),
    "hours_to_minutes": ("hours", "minutes", 60),
    "kg_to_g": ("kilograms", "grams", 1000),
}
_BUCKETS: dict[str, set[int]] = {"test": {0}, "dev": {1}, "train": {2, 3}}
_MAX_TRIES = 100


def _bucket(question: str) -> int:
    return hashlib.sha256(question.encode()).digest()[0] % 4


class UnitConversion:
    """Questions like "How many metres are in 700 kilometres?"; difficulty d means d + 1 digits."""

    name = "unit-conversion"

    def __init__(self) -> None:
        self.skills = [
            Skill(name=skill, description=f"convert {a} to {b}", max_difficulty=3, eval_difficulty=2)
            for skill, (a, b, _) in CONVERSIONS.items()
        ]

    def _make(self, skill: str, difficulty: int, rng: random.Random) -> Task:
        source, target, factor = CONVERSIONS[skill]
        amount = rng.randint(10**difficulty, 10 ** (difficulty + 1) - 1)
        return Task(
            skill=skill,
            question=f"How many {target} are in {amount} {source}?",
            answer=str(amount * factor),
            difficulty=difficulty,
            source=self.name,
        )

    def _draw(self, skill: str, difficulty: int, n: int, seed: int, part: str) -> list[Task]:
        """The first ``n`` distinct tasks of the seeded stream that fall in ``part``'s buckets."""
        if skill not in CONVERSIONS:
            raise ConfigError(f"unit-conversion has no skill {skill!r}; it has {', '.join(CONVERSIONS)}")
        rng = random.Random(f"{seed}-{skill}-{difficulty}-{part}")
        out: dict[str, Task] = {}
        for _ in range(n * _MAX_TRIES):
            if len(out) == n:
                break
            task = self._make(skill, difficulty, rng)
            if _bucket(task.question) in _BUCKETS[part]:
                out.setdefault(task.question, task)
        return list(out.values())

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        return [t for s in self.skills for t in self._draw(s.name, s.eval_difficulty, n, seed, split)]

    def prompt(self, task: Task) -> list[Message]:
        return [
            Message(role="system", content="Answer with the number only."),
            Message(role="user", content=task.question),
        ]

    def score(self, task: Task, completion: str) -> Score:
        answer = extract_answer(completion).replace(",", "")
        solved = answer == task.answer
        return Score(
            reward=1.0 if solved else 0.0,
            feedback="correct" if solved else f"expected {task.answer}, got {answer!r}",
            parsed_answer=answer,
        )

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        return self._draw(skill, min(max(difficulty, 0), 3), n, seed, "train")


def load_environment(**options: Any) -> UnitConversion:
    """Convert kilometres, hours and kilograms (an example plug-in package)."""
    if options:
        raise ConfigError(f"unit-conversion takes no options, got {', '.join(options)}")
    return UnitConversion()
