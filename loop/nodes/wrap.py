"""Every node runs inside a trace span, reports live progress and records its wall time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from langgraph.runtime import Runtime

from teachloop.loop.context import LoopContext
from teachloop.loop.state import LoopState, NodeTiming

NodeFn = Callable[[LoopState, LoopContext], dict[str, Any]]
#: Nodes that work on the next round's data; the others work on the current round.
_NEXT_ROUND_NODES = frozenset(
    {
        "frontier",
        "plan",
        "review_plan",
        "generate",
        "revise",
        "score",
        "select",
        "review_data",
        "rollout",
        "train",
    }
)


class GraphNode(Protocol):
    def __call__(self, state: LoopState, *, runtime: Runtime[LoopContext]) -> dict[str, Any]: ...


def as_graph_node(name: str, fn: NodeFn) -> GraphNode:
    """Wrap a node with a trace span, live progress and its wall time in the state."""

    def run(state: LoopState, *, runtime: Runtime[LoopContext]) -> dict[str, Any]:
        ctx = runtime.context
        round_ = state.get("round", 0) + (1 if name in _NEXT_ROUND_NODES else 0)
        if ctx.progress:
            ctx.progress(name, round_, "start", None)
        start = time.perf_counter()
        with ctx.tracer.span("node", name, round=round_) as sp:
            update = fn(state, ctx)
            sp.outputs = update
        seconds = time.perf_counter() - start
        update["timings"] = [NodeTiming(round=round_, node=name, seconds=round(seconds, 3))]
        if ctx.progress:
            ctx.progress(name, round_, "end", seconds)
        return update

    return run
