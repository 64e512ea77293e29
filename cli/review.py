"""``teachloop review RUN_DIR``: what a paused run waits for, and a person's decision about it.

A run started with ``--review plan,data`` (config ``review: [plan, data]``) pauses after planning
and/or after selection (loop/nodes/review.py). Without a decision option this command shows what
waits: the plan per skill with the planner's reasons, or the selected samples with their scores
(``--skill``, ``--limit``). With one it checks the decision against what waits and records it,
with who and when, in the round (``rounds/<k>/review_<gate>.json``); ``teachloop resume`` continues
the run with it. Decisions: ``--approve`` (as it is); the plan's ``--budget``, ``--skills`` and
``--level SKILL=N``; samples rejected by ``--reject ID``, ``--reject-skill`` or ``--reject-below
SCORE``; an answer replaced with ``--edit ID=ANSWER``.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from teachloop.cli import render
from teachloop.cli.common import out
from teachloop.foundation.errors import ConfigError

Repeated = Annotated[list[str], typer.Option()]


def _pairs(values: list[str], option: str) -> dict[str, str]:
    found = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise ConfigError(f"{option} {value!r} must look like KEY=VALUE")
        found[key.strip()] = rest.strip()
    return found


def review(
    run_dir: Annotated[Path, typer.Argument(help="a run paused for review")],
    approve: Annotated[bool, typer.Option("--approve", help="take the plan or samples as they are")] = False,
    budget: Annotated[int | None, typer.Option(help="plan: total samples of the round")] = None,
    skills: Annotated[str | None, typer.Option(help="plan: keep only these skills (comma-separated)")] = None,
    level: Annotated[list[str], typer.Option(help="plan: SKILL=LEVEL (repeatable)")] = [],  # noqa: B006
    reject: Annotated[list[str], typer.Option(help="data: a sample id not to train on (repeatable)")] = [],  # noqa: B006
    reject_skill: Annotated[
        list[str], typer.Option(help="data: reject every selected sample of this skill (repeatable)")
    ] = [],  # noqa: B006
    reject_below: Annotated[
        float | None, typer.Option(help="data: reject every selected sample scored below this")
    ] = None,
    edit: Annotated[list[str], typer.Option(help="data: ID=ANSWER, a corrected answer (repeatable)")] = [],  # noqa: B006
    note: Annotated[str, typer.Option(help="why (recorded with the decision)")] = "",
    reviewer: Annotated[str | None, typer.Option(help="who decides (default: your login name)")] = None,
    skill: Annotated[list[str], typer.Option("--skill", "-s", help="show only this skill's samples")] = [],  # noqa: B006
    limit: Annotated[int, typer.Option(help="show at most this many samples (0: all)")] = 50,
) -> None:
    """Show what a paused run waits for, or record a decision about it (then: teachloop resume)."""
    from teachloop.agents.review import AnswerEdit, PlanEdit, ReviewDecision
    from teachloop.environments.registry import load_environment
    from teachloop.loop import gates
    from teachloop.loop.config import load_saved_config
    from teachloop.loop.runner import check_databases
    from teachloop.tracing.store import RunStore

    store = RunStore(run_dir)
    if not store.config_path.is_file():
        raise ConfigError(f"{run_dir} is not a teachloop run directory (no config.yaml)")
    config = load_saved_config(store.config_path)
    check_databases(store)
    request = gates.paused_at(store)
    if request is None:
        raise ConfigError(f"{run_dir} is not paused for review; nothing waits for a decision")
    plan_edit = None
    if budget is not None or skills is not None or level:
        levels = {}
        for name, value in _pairs(level, "--level").items():
            try:
                levels[name] = int(value)
            except ValueError:
                raise ConfigError(f"--level {name}={value}: the level must be a whole number") from None
        chosen = [s.strip() for s in skills.split(",") if s.strip()] if skills is not None else None
        try:
            plan_edit = PlanEdit(budget=budget, skills=chosen, levels=levels)
        except ValueError:
            raise ConfigError(f"--budget {budget}: must be at least 1") from None
    waiting = gates.waiting_samples(store, request) if request.gate == "data" else []
    rejected = list(reject)
    rejected += [s.task.id for s, _ in waiting if s.task.skill in reject_skill and s.task.id not in rejected]
    if reject_below is not None:
        rejected += [
            s.task.id
            for s, sc in waiting
            if sc is not None and sc.score < reject_below and s.task.id not in rejected
        ]
    edits = [AnswerEdit(task_id=k, answer=v) for k, v in _pairs(edit, "--edit").items()]
    changes = plan_edit is not None or rejected or edits
    if approve and changes:
        raise ConfigError("--approve takes what waits as it is; leave it out to edit or reject")
    if not approve and not changes and (reject_skill or reject_below is not None):
        raise ConfigError("the filter matched no selected sample; nothing was recorded")
    if not approve and not changes:
        _show(request, store, skill, limit)
        return
    decision = ReviewDecision(
        gate=request.gate,
        round=request.round,
        reviewer=reviewer or getpass.getuser(),
        decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        plan=plan_edit,
        reject=rejected,
        edits=edits,
        note=note,
    )
    env = load_environment(config.env, config.env_options)
    path = gates.record_decision(store, env, request, decision)
    what = "approved" if decision.approved_as_is else f"{len(rejected)} rejected, {len(edits)} edited"
    if plan_edit is not None:
        what = "plan edited"
    out.print(f"recorded ({what}) in {path}; continue with 'teachloop resume {run_dir}'", soft_wrap=True)


def _show(request: Any, store: Any, skills: list[str], limit: int) -> None:
    from teachloop.loop import gates

    if request.gate == "plan":
        render.print_waiting_plan(out, gates.waiting_plan(store, request))
        return
    waiting = gates.waiting_samples(store, request)
    rows = [
        {
            "id": s.task.id,
            "skill": s.task.skill,
            "level": s.task.difficulty,
            "origin": s.origin,
            "score": sc.score if sc is not None else None,
            "question": s.task.question,
            "answer": s.task.answer,
        }
        for s, sc in waiting
        if not skills or s.task.skill in skills
    ]
    render.print_waiting_samples(out, request.round, rows[:limit] if limit > 0 else rows, len(rows))
