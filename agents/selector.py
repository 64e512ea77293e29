"""Select: build the round's training set from the scored candidates.

Per planned skill, the best usable candidates fill the allocation (ties keep generation order,
which is deterministic). A ``replay_fraction`` of each allocation can be drawn from what earlier
rounds trained on, the classic guard against a round undoing earlier gains.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from teachloop.agents.planner import Plan
from teachloop.agents.scorer import ScoredSample
from teachloop.environments.base import Environment, Task


class SelectedSample(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: Task
    origin: Literal["new", "replay"]


def select(
    scored: list[ScoredSample], plan: Plan, replay_pool: list[Task], replay_fraction: float, seed: int
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
        n_replay = min(len(candidates), round(allocation.n * replay_fraction))
        replayed = rng.sample(candidates, n_replay)
        ranked = sorted(usable[allocation.skill], key=lambda s: -s.score)
        fresh = [s.task for s in ranked[: allocation.n - n_replay]]
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
