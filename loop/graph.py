"""The improvement loop as one LangGraph StateGraph, checkpointed to SQLite after every node.

```
setup -> evaluate -> [guard] -> diagnose -> frontier -> plan -> [review_plan] -> generate -> revise -> score
                 \\-> (stop: rounds, target, plateau, time) -> END     -> select -> [review_data] -> [rollout] -> train -> evaluate ...
```
The guard (after every training round) accepts or rolls back the round on the evaluation just
made, and does nothing when ``teacher.guard.action`` is off; the frontier node probes levels and
chooses each skill's with the ``curriculum`` policy, and does nothing with the others; rollouts
only in rounds with DPO or GRPO skills. The review gates (``review: [plan, data]``, loop/nodes/review.py)
are reached only when the state's ``review_gates`` names them; a run without them, or checkpointed
before they existed, goes from plan to generate and from select on as before. Routes read the state only (never the configuration), so
the graph's shape is the same for every run and a checkpoint can be updated outside a run.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.data import score_node, select_node
from teachloop.loop.nodes.evaluate import evaluate, setup
from teachloop.loop.nodes.frontier import frontier_node
from teachloop.loop.nodes.guard import guard_node
from teachloop.loop.nodes.review import review_node, wants_review
from teachloop.loop.nodes.teach import diagnose_node, generate_node, plan_node, revise_node
from teachloop.loop.nodes.train import needs_rollouts, rollout_node, train_node
from teachloop.loop.nodes.wrap import as_graph_node
from teachloop.loop.state import CHECKPOINT_TYPES, LoopState

_PIPELINE = [
    ("diagnose", diagnose_node),
    ("plan", plan_node),
    ("generate", generate_node),
    ("revise", revise_node),
    ("score", score_node),
    ("select", select_node),
    ("train", train_node),
]


def _after_evaluate(state: LoopState) -> str:
    """A trained round goes to the guard first; the untouched student (round 0) has nothing to check."""
    return "guard" if state["round"] > 0 else _after_guard(state)


def _after_guard(state: LoopState) -> str:
    return END if state.get("stop_reason") else "diagnose"


def _after_plan(state: LoopState) -> str:
    return "review_plan" if wants_review(state, "plan") else "generate"


def _after_select(state: LoopState) -> str:
    return "review_data" if wants_review(state, "data") else _after_review_data(state)


def _after_review_data(state: LoopState) -> str:
    """Rollouts (the student's own samples) only in rounds that give a skill to DPO or GRPO."""
    return "rollout" if needs_rollouts(state) else "train"


def build_graph() -> StateGraph[LoopState, LoopContext, LoopState, LoopState]:
    graph = StateGraph(LoopState, context_schema=LoopContext)
    graph.add_node("setup", as_graph_node("setup", setup))
    graph.add_node("evaluate", as_graph_node("evaluate", evaluate))
    for name, fn in _PIPELINE:
        graph.add_node(name, as_graph_node(name, fn))
    graph.add_edge(START, "setup")
    graph.add_edge("setup", "evaluate")
    graph.add_node("guard", as_graph_node("guard", guard_node))
    graph.add_conditional_edges("evaluate", _after_evaluate, ["guard", "diagnose", END])
    graph.add_conditional_edges("guard", _after_guard, ["diagnose", END])
    graph.add_node("frontier", as_graph_node("frontier", frontier_node))
    graph.add_edge("diagnose", "frontier")
    graph.add_edge("frontier", "plan")
    for (a, _), (b, _) in itertools.pairwise(_PIPELINE):
        if a not in ("diagnose", "plan", "select"):
            graph.add_edge(a, b)
    graph.add_node("review_plan", review_node("plan"))
    graph.add_conditional_edges("plan", _after_plan, ["review_plan", "generate"])
    graph.add_edge("review_plan", "generate")
    graph.add_node("review_data", review_node("data"))
    graph.add_node("rollout", as_graph_node("rollout", rollout_node))
    graph.add_conditional_edges("select", _after_select, ["review_data", "rollout", "train"])
    graph.add_conditional_edges("review_data", _after_review_data, ["rollout", "train"])
    graph.add_edge("rollout", "train")
    graph.add_edge(_PIPELINE[-1][0], "evaluate")
    return graph


@contextmanager
def compiled_graph(
    state_db: Path,
) -> Iterator[CompiledStateGraph[LoopState, LoopContext, LoopState, LoopState]]:
    conn = sqlite3.connect(state_db, check_same_thread=False)
    try:
        saver = SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES))
        yield build_graph().compile(checkpointer=saver)
    finally:
        conn.close()
