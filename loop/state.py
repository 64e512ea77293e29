"""The loop's checkpointed state: small things only (round, paths, metrics, plans, timings).

Datasets and models live in the run directory; the state points at them. Lists that grow over
the run (evaluations, sample counts, node timings) are append-only channels, so a node returns
only its new entries.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class LoopState(TypedDict, total=False):
    round: int
    student: str
    evals: Annotated[list[dict[str, Any]], operator.add]
    samples: Annotated[list[dict[str, Any]], operator.add]
    timings: Annotated[list[dict[str, Any]], operator.add]
    plans: Annotated[list[dict[str, Any]], operator.add]
    llm_usage: Annotated[list[dict[str, Any]], operator.add]
    stop_reason: str | None
