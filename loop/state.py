"""The loop's checkpointed state: small typed things only (round, paths, metrics, plans, timings).

Datasets and models live in the run directory; the state points at them. Lists that grow over
the run (evaluations, sample counts, node timings) are append-only channels, so a node returns
only its new entries. Every entry is a frozen pydantic model; the checkpointer stores them
through LangGraph's serializer, which is told exactly which of our types it may rebuild
(``CHECKPOINT_TYPES``).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, ConfigDict

from teachloop.agents.config import Gate
from teachloop.agents.guard import GuardDecision
from teachloop.agents.planner import Plan
from teachloop.evals.metrics import EvalSummary
from teachloop.llm.usage import RoleUsage


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeTiming(_Entry):
    """Wall time of one node in one round."""

    round: int
    node: str
    seconds: float


class SampleCounts(_Entry):
    """What a round's data pipeline made and kept."""

    round: int
    planned: int
    generated: int
    usable: int
    selected: int
    replayed: int


class LLMSpend(_Entry):
    """What one node's teacher LLM calls cost, per role."""

    round: int
    node: str
    roles: dict[str, RoleUsage]


class LoopState(TypedDict, total=False):
    round: int
    student: str
    evals: Annotated[list[EvalSummary], operator.add]
    samples: Annotated[list[SampleCounts], operator.add]
    timings: Annotated[list[NodeTiming], operator.add]
    plans: Annotated[list[Plan], operator.add]
    llm_usage: Annotated[list[LLMSpend], operator.add]
    guards: Annotated[list[GuardDecision], operator.add]
    review_gates: list[Gate]
    stop_reason: str | None


#: The typed channels and the model of their entries.
CHANNELS: dict[str, type[BaseModel]] = {
    "evals": EvalSummary,
    "samples": SampleCounts,
    "timings": NodeTiming,
    "plans": Plan,
    "llm_usage": LLMSpend,
    "guards": GuardDecision,
}


def _module_types(model: type[BaseModel]) -> set[tuple[str, str]]:
    """A model and every model it nests: what the checkpointer must be allowed to rebuild."""
    found = {(model.__module__, model.__name__)}
    for field in model.model_fields.values():
        for arg in _nested(field.annotation):
            found |= _module_types(arg)
    return found


def _nested(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in getattr(annotation, "__args__", ()) for m in _nested(a)]


CHECKPOINT_TYPES: list[tuple[str, str]] = sorted(
    {t for model in CHANNELS.values() for t in _module_types(model)}
)


def typed(values: dict[str, Any]) -> LoopState:
    """A state read back from a checkpoint, with every channel entry as its model.

    Runs written before the state was typed hold plain dicts; validating here lets them load.
    """
    out = dict(values)
    for channel, model in CHANNELS.items():
        if channel in out:
            out[channel] = [model.model_validate(v) for v in out[channel]]
    return out  # type: ignore[return-value]


def untyped_channels(values: dict[str, Any]) -> list[str]:
    """Channels still holding plain dicts (a run checkpointed by an earlier teachloop)."""
    return [c for c in CHANNELS if any(isinstance(v, dict) for v in values.get(c, []))]
