"""Generate: the teacher's engine turns a plan into candidate training tasks.

The heuristic engine asks the environment's own procedural generator for each allocation, at
the planned difficulty, a little more than planned (``oversample``) so that selection can drop
duplicates and contaminated items and still fill the budget. Seeds derive from the run seed,
round and skill, so a resumed or repeated run makes exactly the same data.
"""

from __future__ import annotations

import math

from teachloop.agents.planner import Plan
from teachloop.core.errors import ConfigError
from teachloop.environments.base import Environment, Task, TaskGenerator, content_id


def derived_seed(*parts: object) -> int:
    return int(content_id(*parts), 16) % (2**31)


def generate_for_plan(env: Environment, plan: Plan, seed: int, oversample: float) -> list[Task]:
    if not isinstance(env, TaskGenerator):
        raise ConfigError(
            f"environment {env.name!r} has no task generator, so the heuristic teacher cannot make data for it"
        )
    tasks: list[Task] = []
    for allocation in plan.allocations:
        if allocation.n == 0:
            continue
        n = math.ceil(allocation.n * oversample)
        tasks.extend(
            env.generate(
                allocation.skill,
                n,
                allocation.difficulty,
                seed=derived_seed(seed, plan.round, allocation.skill),
            )
        )
    return tasks
