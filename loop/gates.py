"""What a paused run waits for at a review gate, and recording a person's decision for it.

The pause itself is LangGraph's: the review node's ``interrupt()`` left a pending interrupt in
the run's checkpoint (state.sqlite), so a paused run is found by reading the checkpoint, not a
flag file. ``teachloop review`` checks a decision against what waits (sample ids, plan skills and
levels) and writes it as ``rounds/<k>/review_<gate>.json``; ``teachloop resume`` hands it to the
waiting node (``decision_for``), which applies it (loop/nodes/review.py).
"""

from __future__ import annotations

from pathlib import Path

from langgraph.types import StateSnapshot

from teachloop.agents.planner import Plan
from teachloop.agents.review import ReviewDecision, ReviewRecord, check_sample_ids, edited_plan
from teachloop.agents.scorer import ScoredSample
from teachloop.agents.selector import SelectedSample
from teachloop.environments.base import Environment
from teachloop.foundation.errors import ConfigError, RunDirError
from teachloop.loop.nodes.review import ReviewRequest
from teachloop.tracing.store import RunStore


def pending_review(snapshot: StateSnapshot) -> ReviewRequest | None:
    """The review gate a checkpoint is paused at, if any."""
    for pending in snapshot.interrupts:
        if isinstance(pending.value, dict) and "gate" in pending.value:
            return ReviewRequest.model_validate(pending.value)
    return None


def paused_at(store: RunStore) -> ReviewRequest | None:
    """The review gate the run in ``store`` is paused at (read from its checkpoint), if any."""
    from teachloop.loop.graph import compiled_graph
    from teachloop.loop.runner import THREAD

    if not store.state_db.is_file():
        return None
    with compiled_graph(store.state_db) as graph:
        return pending_review(graph.get_state(THREAD))


def waiting_line(run_dir: Path, request: ReviewRequest, need: str = "review") -> str:
    what = "plan waits" if request.gate == "plan" else "selected samples wait"
    return (
        f"round {request.round}'s {what} for {need}: see it with 'teachloop review {run_dir}', decide with "
        f"'teachloop review {run_dir} --approve' (or edit, reject), then 'teachloop resume {run_dir}'"
    )


def decision_for(store: RunStore, request: ReviewRequest) -> ReviewDecision:
    """The decision ``teachloop review`` recorded for the gate a run waits at."""
    path = store.round(request.round).review(request.gate)
    record = ReviewRecord.model_validate_json(path.read_text()) if path.is_file() else None
    if record is None or record.decision.round != request.round:
        raise RunDirError(waiting_line(store.root, request, "a decision"))
    return record.decision


def waiting_plan(store: RunStore, request: ReviewRequest) -> Plan:
    return store.read_json(store.round(request.round).plan, Plan)


def waiting_samples(
    store: RunStore, request: ReviewRequest
) -> list[tuple[SelectedSample, ScoredSample | None]]:
    """The selected samples of the waiting round, each with its scores."""
    paths = store.round(request.round)
    scored = {s.task.id: s for s in store.read_models(paths.scored, ScoredSample)}
    return [(s, scored.get(s.task.id)) for s in store.read_models(paths.selected, SelectedSample)]


def record_decision(
    store: RunStore, env: Environment, request: ReviewRequest, decision: ReviewDecision
) -> Path:
    """Check ``decision`` against what waits and write it into the round; the run applies it on resume."""
    if decision.gate != request.gate or decision.round != request.round:
        raise ConfigError(
            f"the run waits at round {request.round}'s {request.gate} review, not this decision's"
        )
    if request.gate == "plan":
        if decision.reject or decision.edits:
            raise ConfigError("the run waits for its plan: samples are rejected or edited at the data review")
        if decision.plan is not None:
            levels = {s.name: (s.min_difficulty, s.max_difficulty) for s in env.skills}
            edited_plan(waiting_plan(store, request), decision.plan, levels)
    else:
        if decision.plan is not None:
            raise ConfigError("the run waits for its selected samples: the plan is edited at the plan review")
        check_sample_ids(decision, [s for s, _ in waiting_samples(store, request)])
    path = store.round(request.round).review(request.gate)
    store.write_json(path, ReviewRecord(decision=decision))
    return path
