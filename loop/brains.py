"""The run's teacher roles, each on the brain ``teacher.brains`` chose, built once per run.

``build_brains`` turns the configuration into a typed bundle (``Brains``) that the runner puts in
the ``LoopContext``; a node reads its inputs, calls its role, and writes the result. A role on the
openai brain is given its heuristic brain as fallback (agents/roles.py, criteria/scoring.py), so a
reply that is unusable (malformed after repair, a request that failed for good) costs that call
the LLM's answer, never the loop. Each node reports what its calls cost (``llm_usage`` in the
state, per round and role; summed in summary.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teachloop.agents.config import Brain
from teachloop.agents.roles import (
    Diagnoser,
    HeuristicDiagnoser,
    HeuristicPlanner,
    HeuristicReviser,
    LLMDiagnoser,
    LLMPlanner,
    LLMReviser,
    LLMSynthesizer,
    Planner,
    ProceduralSource,
    Reviser,
    TaskSource,
)
from teachloop.criteria.graph import CRITERIA_DIR, REPORT_FILE, load_report, mine
from teachloop.criteria.pairs import load_pairs
from teachloop.criteria.scoring import LLMSampleJudge, RewardModelJudge, SampleJudge, Unscored
from teachloop.environments.base import Environment, TaskGenerator
from teachloop.foundation.files import atomic_write_text
from teachloop.llm.client import Teacher
from teachloop.loop.config import RunConfig
from teachloop.loop.state import LLMSpend
from teachloop.tracing.spans import Tracer

if TYPE_CHECKING:
    from teachloop.loop.context import LoopContext


@dataclass(frozen=True)
class Brains:
    """Who does each teacher role's thinking in this run."""

    diagnoser: Diagnoser
    planner: Planner
    task_source: TaskSource
    reviser: Reviser
    judge: SampleJudge
    #: The CritiQ manager is made per teacher session inside mining (criteria/graph.py ``mine``).
    criteria_manager: Brain


def build_brains(
    config: RunConfig, env: Environment, teacher: Teacher | None, tracer: Tracer, run_dir: Path
) -> Brains:
    """Each role on its configured brain; ``teacher`` is the run's LLM client (None when no role
    uses the LLM)."""
    t = config.teacher

    def llm() -> Teacher:
        if teacher is None:
            raise RuntimeError("a role uses the openai brain but the run has no teacher client")
        return teacher

    diagnoser: Diagnoser = HeuristicDiagnoser(tracer)
    if config.uses_llm("diagnoser"):
        diagnoser = LLMDiagnoser(llm(), env.skills, t.diagnoser_examples, tracer, fallback=diagnoser)
    planner: Planner = HeuristicPlanner(config.policy, env.skills, t.samples_per_round, t.min_share, tracer)
    if config.uses_llm("planner"):
        planner = LLMPlanner(llm(), env.skills, t.samples_per_round, t.min_share, tracer, fallback=planner)
    procedural = ProceduralSource(env, config.seed, t.oversample, tracer)
    source: TaskSource = procedural
    if config.uses_llm("synthesizer"):
        generator = procedural if isinstance(env, TaskGenerator) else None
        source = LLMSynthesizer(
            llm(), env, t.synthesis, t.llm.temperature, t.oversample, config.seed, tracer, fallback=generator
        )
    reviser: Reviser = HeuristicReviser(tracer)
    if config.uses_llm("reviser"):
        reviser = LLMReviser(llm(), env, t.revision, t.synthesis, t.llm.temperature, config.seed, tracer)
    judge: SampleJudge = Unscored()
    if t.criteria.scorer is not None:
        judge = RewardModelJudge(t.criteria.scorer, tracer)
    elif config.uses_llm("judge"):
        criteria_path = run_dir / CRITERIA_DIR / REPORT_FILE
        judge = LLMSampleJudge(llm(), env.skills, criteria_path, tracer, fallback=judge)
    return Brains(
        diagnoser=diagnoser,
        planner=planner,
        task_source=source,
        reviser=reviser,
        judge=judge,
        criteria_manager=t.brains.criteria_manager,
    )


def usage_update(ctx: LoopContext, round_: int, node: str) -> dict[str, Any]:
    """The state update that records what this node's LLM calls spent (nothing without calls)."""
    if ctx.teacher is None:
        return {}
    usage = ctx.teacher.take_usage()
    if not usage:
        return {}
    return {"llm_usage": [LLMSpend(round=round_, node=node, roles=dict(sorted(usage.items())))]}


def prepare_criteria(ctx: LoopContext) -> None:
    """Put the run's criteria in ``RUN_DIR/criteria/``: mined from ``teacher.criteria.pairs`` (once;
    a resumed setup reads them back) or copied from ``teacher.criteria.file``; nothing without either."""
    settings = ctx.config.teacher.criteria
    out_dir = ctx.store.root / CRITERIA_DIR
    if settings.pairs is not None:
        if ctx.teacher is None:
            raise RuntimeError("criteria mining needs the run's teacher client")
        pairs = load_pairs(settings.pairs)
        mine(pairs, settings, ctx.teacher, out_dir, ctx.config.seed, manager=ctx.brains.criteria_manager)
    elif settings.file is not None:
        atomic_write_text(out_dir / REPORT_FILE, load_report(settings.file).model_dump_json(indent=2))
