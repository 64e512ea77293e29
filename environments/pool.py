"""Fixed sets of tasks (a benchmark, a user's file) split by seed into dev, test and a training pool.

Environments without a procedural generator still need one for the heuristic teacher: the
training pool is it. Each skill's tasks are ordered by a hash of (split seed, task id), so the
split depends only on the seed and the data, never on file order or on how many tasks a run
asks for; dev takes the first share, test the next, the pool the rest. Dev, test and pool never
share a question (exact duplicates are dropped when the pool is built).

The pool is small: a teacher that asks for more than it holds gets what is left, and a question
the student already trained on is not offered again by the engine (``teacher.replay_fraction``
revisits earlier rounds' data instead).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Literal

from teachloop.environments.base import Split, Task, content_id, normalize_question
from teachloop.foundation.errors import ConfigError

log = logging.getLogger(__name__)
Part = Literal["dev", "test", "train"]


def _order(tasks: list[Task], seed: int, salt: str) -> list[Task]:
    return sorted(tasks, key=lambda t: content_id(salt, seed, t.id))


class TaskPool:
    """Tasks split per skill into ``dev`` / ``test`` / ``train`` (the generator's pool)."""

    def __init__(self, tasks: list[Task], dev_fraction: float, test_fraction: float, seed: int) -> None:
        if not (0 < dev_fraction < 1 and 0 < test_fraction < 1 and dev_fraction + test_fraction <= 1):
            raise ConfigError(
                "dev_fraction and test_fraction must each be between 0 and 1 and sum to at most 1 "
                f"(got {dev_fraction} and {test_fraction})"
            )
        by_skill: dict[str, list[Task]] = defaultdict(list)
        seen: set[str] = set()
        for task in tasks:
            key = normalize_question(task.question)
            if key in seen:
                log.warning("dropping a repeated question: %.80s", task.question)
                continue
            seen.add(key)
            by_skill[task.skill].append(task)
        self.parts: dict[Part, dict[str, list[Task]]] = {"dev": {}, "test": {}, "train": {}}
        for skill, items in by_skill.items():
            n = len(items)
            n_dev = max(1, round(n * dev_fraction))
            n_test = max(1, round(n * test_fraction))
            if n_dev + n_test > n:
                raise ConfigError(
                    f"skill {skill!r} has only {n} distinct question(s); it needs at least 2 (one dev, one test)"
                )
            ordered = _order(items, seed, "split")
            self.parts["dev"][skill] = ordered[:n_dev]
            self.parts["test"][skill] = ordered[n_dev : n_dev + n_test]
            self.parts["train"][skill] = ordered[n_dev + n_test :]

    def sizes(self, part: Part) -> dict[str, int]:
        return {skill: len(items) for skill, items in self.parts[part].items()}

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        """Up to ``n`` tasks per skill of a split (fewer where the split is smaller)."""
        if split not in ("dev", "test"):
            raise ConfigError(f"split must be dev or test, not {split!r}")
        return [t for items in self.parts[split].values() for t in _order(items, seed, split)[:n]]

    def draw(self, skill: str, n: int, seed: int) -> list[Task]:
        """Up to ``n`` training-pool tasks of a skill, in an order fixed by ``seed``."""
        if skill not in self.parts["train"]:
            raise ConfigError(f"no skill {skill!r}; skills: {', '.join(self.parts['train'])}")
        return _order(self.parts["train"][skill], seed, "train")[:n]
