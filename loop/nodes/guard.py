"""guard: after a round's training and evaluation, accept its model or roll it back (agents/guard.py).

The check reuses the dev results the evaluate node just wrote for the new model, so it costs no
model call. A rolled-back round keeps its files (what was trained and measured stays on disk for
the report), but from then on the student is the model the round trained from: the state's
``student`` points back at it, the next diagnosis reads that model's dev results, the stop rules
judge it, and the next round replays earlier data (``teacher.guard.replay_fraction``). A repaired
round is kept, and the next round replays the dropped skills' earlier data.
"""

from __future__ import annotations

from typing import Any

from teachloop.agents.guard import check_skills, decide, kept_round
from teachloop.evals.metrics import EvalSummary, ItemResult
from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.evaluate import stop_reason
from teachloop.loop.state import LoopState


def student_round(state: LoopState, round_: int) -> int:
    """The round whose model (and evaluation) is the student once round ``round_`` is decided."""
    return kept_round(state.get("guards", []), round_)


def rolled_back(state: LoopState, round_: int) -> bool:
    return student_round(state, round_) != round_


def _trained_from(state: LoopState, ctx: LoopContext, round_: int) -> tuple[int, str]:
    """The round whose model round ``round_`` trained from, and that model's directory."""
    earlier = [d for d in state.get("guards", []) if d.round < round_]
    if earlier:
        last = max(earlier, key=lambda d: d.round)
        return student_round(state, last.round), last.student
    if round_ <= 1:
        return 0, str(ctx.base_student)
    return round_ - 1, str(ctx.store.round(round_ - 1).model)  # a run from before the guard


def accepted_evals(state: LoopState) -> list[EvalSummary]:
    """The evaluations as the loop goes by: a rolled-back round counts as its baseline's numbers."""
    by_key = {(e.round, e.split): e for e in state.get("evals", [])}
    out = []
    for e in state.get("evals", []):
        kept = student_round(state, e.round)
        out.append(e if kept == e.round else by_key[(kept, e.split)].model_copy(update={"round": e.round}))
    return out


def guard_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    round_ = state["round"]
    settings = ctx.config.teacher.guard
    if round_ == 0 or settings.action == "off":
        return {}
    baseline, kept = _trained_from(state, ctx, round_)
    before = ctx.store.read_models(ctx.store.round(baseline).eval("dev"), ItemResult)
    after = ctx.store.read_models(ctx.store.round(round_).eval("dev"), ItemResult)
    inputs = {
        "baseline_round": baseline,
        "dev_items": len(after),
        "alpha": settings.alpha,
        "action": settings.action,
    }
    with ctx.tracer.span("agent", "guard", round=round_, inputs=inputs) as sp:
        checks = check_skills(before, after, settings.alpha)
        decision = decide(round_, baseline, checks, settings.alpha, settings.action, state["student"], kept)
        sp.outputs = {
            "action": decision.action,
            "dropped": decision.dropped,
            "reason": decision.reason,
            "checks": [c.model_dump() for c in checks],
        }
    ctx.store.write_json(ctx.store.round(round_).guard, decision)
    update: dict[str, Any] = {"guards": [decision]}
    if not decision.accepted:
        decided: LoopState = {**state, "guards": [*state.get("guards", []), decision]}
        elapsed = sum(t.seconds for t in state.get("timings", []))
        update["student"] = decision.student
        update["stop_reason"] = stop_reason(
            {**decided, "evals": accepted_evals(decided)}, ctx.config, elapsed
        )
    return update
