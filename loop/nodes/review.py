"""review_plan and review_data: the run pauses for a person after planning and/or after selection
(``review: [plan, data]``), through LangGraph's ``interrupt()`` with the run's SQLite checkpointer.

The first time a gate runs, ``interrupt()`` stops the run before anything happens, and the
checkpoint records what waits (the process ends; killing it loses nothing). ``teachloop review``
writes the person's decision into the round (``review_<gate>.json``); ``teachloop resume`` hands
it back to ``interrupt()``, and the node runs again from the top, now with the decision, and
applies it: an edited plan becomes the round's plan; rejected samples leave the training set and
edited answers replace the gold ones. Applying is idempotent (a crash mid-node redoes it from the
same inputs). Runs without ``review`` never reach these nodes (the routes read ``review_gates``
from the state, so the graph has one shape for every run).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel, ConfigDict

from teachloop.agents.review import (
    Gate,
    ReviewDecision,
    ReviewRecord,
    edited_plan,
    reviewed_selection,
    reviewer_revision,
)
from teachloop.agents.selector import SelectedSample, sft_rows
from teachloop.criteria.pairs import review_pairs
from teachloop.foundation.files import atomic_write_text
from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.common import current_plan
from teachloop.loop.nodes.wrap import GraphNode, as_graph_node
from teachloop.loop.state import LoopState


class ReviewRequest(BaseModel):
    """What the checkpoint says waits (the interrupt's value)."""

    model_config = ConfigDict(frozen=True)

    gate: Gate
    round: int


def wants_review(state: LoopState, gate: Gate) -> bool:
    return gate in state.get("review_gates", [])


def review_node(gate: Gate) -> GraphNode:
    """The gate's graph node: pause until a decision comes back, then apply it inside a node span."""
    name = f"review_{gate}"

    def run(state: LoopState, *, runtime: Runtime[LoopContext]) -> dict[str, Any]:
        request = ReviewRequest(gate=gate, round=current_plan(state).round)
        decision = ReviewDecision.model_validate(interrupt(request.model_dump()))  # nothing before this
        apply = _apply_plan if gate == "plan" else _apply_data
        return as_graph_node(name, lambda s, ctx: apply(s, ctx, decision))(state, runtime=runtime)

    return run


def _levels(ctx: LoopContext) -> dict[str, tuple[int, int]]:
    return {s.name: (s.min_difficulty, s.max_difficulty) for s in ctx.env.skills}


def _apply_plan(state: LoopState, ctx: LoopContext, decision: ReviewDecision) -> dict[str, Any]:
    plan = current_plan(state)
    after = edited_plan(plan, decision.plan, _levels(ctx)) if decision.plan else plan
    paths = ctx.store.round(plan.round)
    with ctx.tracer.span("agent", "reviewer", round=plan.round, inputs=decision.model_dump()) as sp:
        record = ReviewRecord(decision=decision, applied=True, plan_before=plan, plan_after=after)
        ctx.store.write_json(paths.plan, after)
        ctx.store.write_json(paths.review("plan"), record)
        sp.outputs = {"budget": after.total, "allocations": {a.skill: a.n for a in after.allocations}}
    return {"plans": [after]} if after != plan else {}


def _apply_data(state: LoopState, ctx: LoopContext, decision: ReviewDecision) -> dict[str, Any]:
    k = current_plan(state).round
    paths = ctx.store.round(k)
    if not paths.selected_unreviewed.is_file():  # what select chose, kept for a rerun of this node
        ctx.store.write_models(
            paths.selected_unreviewed, ctx.store.read_models(paths.selected, SelectedSample)
        )
    selected = ctx.store.read_models(paths.selected_unreviewed, SelectedSample)
    with ctx.tracer.span("agent", "reviewer", round=k, inputs=decision.model_dump()) as sp:
        kept, record = reviewed_selection(decision, selected)
        ctx.store.write_models(paths.selected, kept)
        ctx.store.write_rows(paths.rows("sft"), sft_rows(ctx.env, kept))
        pairs = review_pairs(record, kept)
        atomic_write_text(paths.review_rows("pairs"), "".join(p.model_dump_json() + "\n" for p in pairs))
        skills = {s.name: s for s in ctx.env.skills}
        revisions = [reviewer_revision(e, skills[e.before.skill], decision) for e in record.edited]
        ctx.store.write_models(paths.review_rows("revisions"), revisions)
        ctx.store.write_json(paths.review("data"), record)
        sp.outputs = {
            "kept": len(kept),
            "rejected": len(record.rejected),
            "edited": len(record.edited),
            "pairs": len(pairs),
            "kept_by_skill": dict(Counter(s.task.skill for s in kept)),
        }
    counts = next(c for c in reversed(state["samples"]) if c.round == k)
    recount = counts.model_copy(
        update={"selected": len(kept), "replayed": sum(s.origin == "replay" for s in kept)}
    )
    return {"samples": [recount]}
