"""``teachloop envs check``: a plug-in author's test of an environment, step by step.

Loading an environment for a run stops at its first problem (``environments/contract.py``); an
author fixing a plug-in wants every problem at once. This runs the same load-time contract, then
puts a sample of gold answers through the environment's own scorer per split and skill (and, for a
generator, per skill at its lowest, evaluation and highest difficulty), one row per check. A gold
answer that fails its own scorer would teach wrong answers and report wrong accuracies, so each
such row fails; a generator that makes fewer tasks than asked passes, but says so, since the loop
then plans for samples it cannot get.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from teachloop.environments.base import Task, TaskGenerator
from teachloop.environments.contract import CheckedEnvironment, checked, skill_names, validate_environment
from teachloop.environments.registry import construct_environment
from teachloop.foundation.errors import PluginError
from teachloop.foundation.types import SPLITS


class CheckRow(BaseModel):
    """One check: what was checked, on which part of the environment, and what came of it."""

    model_config = ConfigDict(frozen=True)

    check: str
    scope: str
    passed: bool
    detail: str


def check_environment(
    name: str, options: dict[str, Any] | None = None, per_skill: int = 5, seed: int = 0
) -> list[CheckRow]:
    """Every check of environment ``name``: failures are rows, not exceptions (an unknown name still
    raises its ``ConfigError``)."""
    try:
        env = construct_environment(name, options)
    except PluginError as err:
        return [CheckRow(check="load", scope="loader", passed=False, detail=str(err))]
    rows = [CheckRow(check="load", scope="loader", passed=True, detail=f"{type(env).__name__}")]
    try:
        validate_environment(env, name)
        rows.append(CheckRow(check="contract", scope="load-time check", passed=True, detail="ok"))
    except PluginError as err:
        rows.append(CheckRow(check="contract", scope="load-time check", passed=False, detail=str(err)))
    try:
        skill_names(name, env)
    except PluginError:
        return rows  # without well-formed skills there is nothing to sample by
    wrapped = checked(env, name)
    for split in SPLITS:
        rows += _split_rows(wrapped, split, per_skill, seed)
    if isinstance(wrapped, TaskGenerator):
        for skill in wrapped.skills:
            levels = sorted({skill.min_difficulty, skill.eval_difficulty, skill.max_difficulty})
            for level in levels:
                rows.append(_generated_row(wrapped, skill.name, level, per_skill, seed))
    return rows


def _split_rows(env: CheckedEnvironment, split: str, per_skill: int, seed: int) -> list[CheckRow]:
    check = f"gold answers ({split})"
    try:
        tasks = env.tasks(split, per_skill, seed)  # type: ignore[arg-type]
    except PluginError as err:
        return [CheckRow(check=check, scope="all skills", passed=False, detail=str(err))]
    rows = []
    for skill in env.skills:
        mine = [t for t in tasks if t.skill == skill.name]
        passed, detail = _gold(env, mine)
        if len(mine) < per_skill:
            detail += f" (asked for {per_skill})"
        rows.append(CheckRow(check=check, scope=skill.name, passed=passed and bool(mine), detail=detail))
    return rows


def _generated_row(env: CheckedEnvironment, skill: str, level: int, per_skill: int, seed: int) -> CheckRow:
    check, scope = "generated gold", f"{skill} @ level {level}"
    try:
        tasks = env.generate(skill, per_skill, level, seed)  # type: ignore[attr-defined]
    except PluginError as err:
        return CheckRow(check=check, scope=scope, passed=False, detail=str(err))
    passed, detail = _gold(env, tasks)
    if len(tasks) < per_skill:
        detail += f"; made {len(tasks)} of the {per_skill} asked for (a plan would fall short)"
    return CheckRow(check=check, scope=scope, passed=passed and bool(tasks), detail=detail)


def _gold(env: CheckedEnvironment, tasks: list[Task]) -> tuple[bool, str]:
    """Whether every task's gold answer passes the scorer, and a line saying how many did."""
    if not tasks:
        return False, "no tasks"
    failures = []
    for task in tasks:
        try:
            score = env.score(task, task.answer)
        except PluginError as err:
            failures.append(str(err))
            continue
        if not score.solved:
            failures.append(f"task {task.id} fails (reward {score.reward:g}: {score.feedback})")
    if not failures:
        return True, f"{len(tasks)}/{len(tasks)} solved"
    return False, f"{len(failures)} of {len(tasks)} gold answers fail their own scorer; first: {failures[0]}"
