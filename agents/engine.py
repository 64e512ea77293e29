"""Generate: the teacher's engine turns a plan into candidate training tasks.

The heuristic engine asks the environment's own procedural generator for each allocation, at
the planned difficulty, a little more than planned (``oversample``) so that selection can still
fill the budget after dropping what fails the checks. Questions the student already trained on,
or that sit in dev or test, do not count towards that target: the engine asks again with a
fresh seed until it has enough new ones or the generator stops finding any (a small question
space is used up). Seeds derive from the run seed, round, skill and attempt, so a resumed or
repeated run makes exactly the same data. Each call to the generator is a tool span, so a
trace shows which skill's question space ran dry.
"""

from __future__ import annotations

import math

from teachloop.agents.planner import Plan
from teachloop.environments.base import Environment, Task, TaskGenerator, content_id, normalize_question
from teachloop.foundation.errors import ConfigError
from teachloop.tracing.progress import report
from teachloop.tracing.spans import Tracer

MAX_ATTEMPTS = 4


def derived_seed(*parts: object) -> int:
    return int(content_id(*parts), 16) % (2**31)


def generate_for_plan(
    env: Environment, plan: Plan, seed: int, oversample: float, known_questions: set[str], tracer: Tracer
) -> list[Task]:
    if not isinstance(env, TaskGenerator):
        raise ConfigError(
            f"environment {env.name!r} has no task generator, so the heuristic teacher cannot make data for it"
        )
    tasks: list[Task] = []
    wanted = sum(math.ceil(a.n * oversample) for a in plan.allocations)
    for index, allocation in enumerate(plan.allocations):
        target = math.ceil(allocation.n * oversample)
        seen = set(known_questions)
        fresh = 0
        for attempt in range(MAX_ATTEMPTS):
            if fresh >= target:
                break
            n = 2 * (target - fresh) if attempt else target
            call_seed = derived_seed(seed, plan.round, allocation.skill, attempt)
            inputs = {
                "skill": allocation.skill,
                "n": n,
                "difficulty": allocation.difficulty,
                "seed": call_seed,
            }
            with tracer.span("tool", f"{env.name}.generate", inputs=inputs, attempt=attempt) as sp:
                batch = env.generate(allocation.skill, n, allocation.difficulty, seed=call_seed)
                before = fresh
                for task in batch:
                    key = normalize_question(task.question)
                    if key in seen or fresh >= target:
                        continue
                    seen.add(key)
                    fresh += 1
                    tasks.append(task)
                sp.outputs = {
                    "returned": len(batch),
                    "new": fresh - before,
                    "new_so_far": fresh,
                    "target": target,
                }
        report("generated tasks", len(tasks), wanted, skills=f"{index + 1}/{len(plan.allocations)}")
    return tasks
