"""Recipe: which trainer each skill gets this round (SFT, DPO or GRPO), and why.

A fixed recipe (``train.trainer`` sft, dpo or grpo) gives every skill the same trainer. ``auto``
follows TULU 3's order, SFT -> DPO -> RLVR (GRPO), per skill: a skill stays on its trainer while
it keeps gaining, and moves to the next one when a round on its current trainer raised its dev
accuracy by less than ``stall_threshold`` while the skill is still unsolved. The last stage
(GRPO) is kept once reached. A skill that got no data last round has no evidence of a stall and
keeps its trainer. The reason is written into each allocation, so plan.json says why.
"""

from __future__ import annotations

from teachloop.agents.diagnoser import WeaknessReport
from teachloop.agents.planner import Allocation, Plan
from teachloop.training.config import Recipe, Trainer

#: The order ``auto`` moves a stalled skill along.
STAGES: tuple[Trainer, ...] = ("sft", "dpo", "grpo")
_NAMES = {"sft": "SFT", "dpo": "DPO", "grpo": "GRPO"}


def _choice(
    skill: str, report: WeaknessReport, previous: Plan | None, stall_threshold: float
) -> tuple[Trainer, str]:
    before = next((a for a in previous.allocations if a.skill == skill), None) if previous else None
    if before is None:
        return "sft", "auto: SFT first"
    current = before.trainer
    weakness = report.weakness(skill)
    if weakness is None or weakness.change is None or before.n == 0:
        return current, f"auto: {_NAMES[current]} (no measured gain to judge)"
    gain = weakness.change
    if weakness.accuracy >= 1.0:
        return current, f"auto: {_NAMES[current]} (solved on dev)"
    if gain >= stall_threshold:
        return current, f"auto: {_NAMES[current]} gained {gain:+.0%} (>= {stall_threshold:.0%}), kept"
    position = STAGES.index(current)
    if position == len(STAGES) - 1:
        return current, f"auto: {_NAMES[current]} gained {gain:+.0%}, stalled, but is the last stage"
    following = STAGES[position + 1]
    return following, (
        f"auto: {_NAMES[current]} gained {gain:+.0%} (< {stall_threshold:.0%}) at "
        f"{weakness.accuracy:.0%}: moved to {_NAMES[following]}"
    )


def assign_trainers(
    plan: Plan, report: WeaknessReport, previous: Plan | None, recipe: Recipe, stall_threshold: float
) -> Plan:
    """``plan`` with each allocation's trainer set and the choice appended to its reason."""
    allocations: list[Allocation] = []
    for a in plan.allocations:
        if recipe == "auto":
            trainer, why = _choice(a.skill, report, previous, stall_threshold)
        else:
            trainer, why = recipe, f"trainer {_NAMES[recipe]} (train.trainer)"
        allocations.append(a.model_copy(update={"trainer": trainer, "reason": f"{a.reason}; {why}"}))
    return plan.model_copy(update={"allocations": allocations})
