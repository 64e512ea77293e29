"""Select: build the round's training set from the scored candidates.

Per planned skill, usable candidates fill the allocation by one of three rules
(``teacher.scoring.selection``):
- ``top_k``: the best scores first (ties keep generation order, which is deterministic);
- ``threshold``: generation order among candidates scoring at least ``threshold``;
- ``sample``: QuRating's sampling, scores as logits at a ``temperature``: each candidate is drawn
  with probability proportional to exp(score / temperature), without replacement (Gumbel top-k,
  seeded), so the data leans to high scores without losing all diversity to a hard cut.
A share of each allocation (``replay``, per skill) can be drawn from what earlier rounds trained that
skill on, the classic guard against a round undoing earlier gains.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from teachloop.agents.config import Selection
from teachloop.agents.planner import Plan
from teachloop.agents.scorer import ScoredSample
from teachloop.environments.base import Environment, Task


class SelectedSample(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: Task
    origin: Literal["new", "replay"]


def pick(
    candidates: list[ScoredSample],
    n: int,
    how: Selection,
    threshold: float,
    temperature: float,
    rng: random.Random,
) -> list[ScoredSample]:
    if how == "threshold":
        return [s for s in candidates if s.score >= threshold][:n]
    if how == "sample":
        keys = [s.score / temperature - math.log(-math.log(rng.random() or 1e-300)) for s in candidates]
        order = sorted(range(len(candidates)), key=lambda i: -keys[i])
        return [candidates[i] for i in order[:n]]
    return sorted(candidates, key=lambda s: -s.score)[:n]


def select(
    scored: list[ScoredSample],
    plan: Plan,
    replay_pool: list[Task],
    replay: Mapping[str, float],
    seed: int,
    how: Selection = "top_k",
    threshold: float = 0.5,
    temperature: float = 1.0,
) -> list[SelectedSample]:
    usable: dict[str, list[ScoredSample]] = defaultdict(list)
    for s in scored:
        if s.usable:
            usable[s.task.skill].append(s)
    pool: dict[str, list[Task]] = defaultdict(list)
    for t in replay_pool:
        pool[t.skill].append(t)
    rng = random.Random(seed)
    chosen: list[SelectedSample] = []
    for allocation in plan.allocations:
        candidates = pool[allocation.skill]
        n_replay = min(len(candidates), round(allocation.n * replay.get(allocation.skill, 0.0)))
        replayed = rng.sample(candidates, n_replay)
        fresh = [
            s.task
            for s in pick(usable[allocation.skill], allocation.n - n_replay, how, threshold, temperature, rng)
        ]
        chosen += [SelectedSample(task=t, origin="new") for t in fresh]
        chosen += [SelectedSample(task=t, origin="replay") for t in replayed]
    return chosen


def sft_rows(env: Environment, samples: list[SelectedSample]) -> list[dict[str, Any]]:
    """Conversational prompt/completion rows: TRL trains on the completion (the answer) only."""
    return [
        {
            "prompt": [m.model_dump() for m in env.prompt(s.task)],
            "completion": [{"role": "assistant", "content": s.task.answer}],
            "skill": s.task.skill,
            "task_id": s.task.id,
            "origin": s.origin,
        }
        for s in samples
    ]
