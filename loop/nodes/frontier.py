"""frontier: with the ``curriculum`` policy, measure where each skill's frontier is and choose the
level the next round's data is made at (agents/curriculum.py); with any other policy, nothing.

Dev results give the accuracy at the evaluation level; a probe gives it elsewhere: a few tasks of
the environment's generator at that level, answered greedily by the current student in one
batched call (``student.probe`` span: items, levels, tokens, seconds). Only levels a rule needs
are probed, so a round where every skill stays at its evaluation level probes nothing. Writes
``probe.parquet`` and ``curriculum.json`` into the round being planned; the plan node reads the latter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from teachloop.agents.curriculum import (
    Curriculum,
    LevelResult,
    ProbeResult,
    choose_level,
    last_round_at_level,
    level_results,
    needed_probe,
    probe_tasks,
)
from teachloop.environments.base import Skill, TaskGenerator
from teachloop.evals.evaluate import answer_and_score
from teachloop.evals.metrics import ItemResult, skill_metrics
from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.common import eval_questions, load_current_student, memory_hint, trained_questions
from teachloop.loop.nodes.guard import rolled_back, student_round
from teachloop.loop.state import LoopState

#: Probe rounds per node: the current level of each skill, then the level a move goes to.
_PROBE_PASSES = 2


def uses_curriculum(ctx: LoopContext) -> bool:
    cfg = ctx.config
    return cfg.policy == "curriculum" and not cfg.uses_llm("planner") and cfg.teacher.feedback != "open_ended"


def frontier_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    if not uses_curriculum(ctx):
        return {}
    round_ = state["round"]
    planned = round_ + 1
    settings = ctx.config.teacher.curriculum
    dev = ctx.store.read_models(ctx.store.round(student_round(state, round_)).eval("dev"), ItemResult)
    previous = state["plans"][-1] if state.get("plans") else None
    earlier_path = ctx.store.round(round_).curriculum
    earlier = ctx.store.read_json(earlier_path, Curriculum) if earlier_path.is_file() else None
    undone = rolled_back(state, round_)

    skills = ctx.env.skills
    current: dict[str, int] = {}
    trained: dict[str, int] = {}
    measured: dict[str, dict[int, LevelResult]] = {}
    for skill in skills:
        allocation = (
            next((a for a in previous.allocations if a.skill == skill.name), None) if previous else None
        )
        current[skill.name] = allocation.difficulty if allocation else skill.eval_difficulty
        trained[skill.name] = allocation.n if allocation else 0
        m = skill_metrics(skill.name, (r for r in dev if r.skill == skill.name))
        measured[skill.name] = {
            skill.eval_difficulty: LevelResult(
                level=skill.eval_difficulty, n=m.n, solved=m.solved, source="dev"
            )
        }

    def history(skill: Skill) -> tuple[float | None, bool | None]:
        earlier_choice = earlier.of(skill.name) if earlier else None
        return last_round_at_level(
            earlier_choice, trained[skill.name], measured[skill.name], settings, undone
        )

    probes: list[ProbeResult] = []
    loaded: list[tuple[PreTrainedModel, PreTrainedTokenizerBase]] = []

    def student() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if not loaded:  # loaded once, and only when a probe is needed
            loaded.append(load_current_student(ctx, state))
        return loaded[0]

    if isinstance(ctx.env, TaskGenerator):
        exclude = eval_questions(ctx, probes=False) | trained_questions(ctx, planned)
        for _ in range(_PROBE_PASSES):
            needs = [
                (skill.name, level)
                for skill in skills
                if (
                    level := needed_probe(
                        skill, current[skill.name], measured[skill.name], history(skill)[1], settings
                    )
                )
                is not None
            ]
            if not needs:
                break
            results = _probe(student, ctx, ctx.env, needs, exclude, planned)
            probes += results
            for (skill_name, level), result in level_results(results).items():
                measured[skill_name][level] = result
    choices = []
    for skill in skills:
        progress, stalled = history(skill)
        choices.append(
            choose_level(skill, current[skill.name], measured[skill.name], settings, stalled, progress)
        )
    curriculum = Curriculum(round=planned, skills=choices, probed=len(probes))
    paths = ctx.store.round(planned)
    ctx.store.write_models(paths.probe, probes)
    ctx.store.write_json(paths.curriculum, curriculum)
    return {}


def _probe(
    student: Callable[[], tuple[PreTrainedModel, PreTrainedTokenizerBase]],
    ctx: LoopContext,
    env: TaskGenerator,
    needs: list[tuple[str, int]],
    exclude: set[str],
    planned: int,
) -> list[ProbeResult]:
    """The student's greedy answers to ``probe_items`` generated tasks per (skill, level) in ``needs``."""
    n, seed = ctx.config.teacher.curriculum.probe_items, ctx.config.seed
    drawn = [(t, level) for skill, level in needs for t in probe_tasks(env, skill, level, n, seed, exclude)]
    if not drawn:
        return []
    tasks = [t for t, _ in drawn]
    model, tokenizer = student()
    inputs = {"levels": [f"{s}@{lvl}" for s, lvl in needs], "tasks": len(tasks)}
    with (
        memory_hint(ctx, planned, "probing levels", "eval.batch_size", ctx.config.eval.batch_size),
        ctx.tracer.span("tool", "student.probe", round=planned, inputs=inputs) as sp,
    ):
        results = answer_and_score(model, tokenizer, ctx.env, tasks, ctx.config.eval, ctx.tracer)
        out = [
            ProbeResult(**r.model_dump(), level=level) for r, (_, level) in zip(results, drawn, strict=True)
        ]
        sp.outputs = {f"{s}@{lvl}": f"{r.solved}/{r.n}" for (s, lvl), r in level_results(out).items()}
    return out
