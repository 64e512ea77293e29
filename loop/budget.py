"""The teacher LLM budget (``stop.max_llm_tokens``, ``stop.max_cost_usd``): checked between nodes.

Unlike the other stop rules, which end the loop after an evaluation, a spent budget pauses it at
the next node boundary, mid-round if need be: the checkpoint then names the node that runs next, so
``teachloop resume`` continues exactly there once the budget in the run's config.yaml is raised.
A node is never cut short, so a run can overspend by what its last node used; the state's
``llm_usage`` channel (what every node spent, per role) is the single record both the check and
the summary read.
"""

from __future__ import annotations

from teachloop.llm.usage import RoleUsage
from teachloop.loop.config import StopConfig
from teachloop.loop.state import LoopState


def spent(state: LoopState) -> RoleUsage:
    """What the teacher LLM used over the whole run, all roles together."""
    total = RoleUsage()
    for node in state.get("llm_usage", []):
        for usage in node.roles.values():
            total = total.add(usage)
    return total


def budget_stop(state: LoopState, stop: StopConfig) -> str | None:
    """Why the run must pause before its next node, or None while the budget lasts."""
    used = spent(state)
    tokens = used.prompt_tokens + used.completion_tokens
    if stop.max_llm_tokens is not None and tokens >= stop.max_llm_tokens:
        spent_what, setting = (
            f"LLM token budget of {stop.max_llm_tokens} spent ({tokens} used)",
            "max_llm_tokens",
        )
    elif stop.max_cost_usd is not None and used.cost_usd >= stop.max_cost_usd:
        spent_what = f"LLM cost budget of ${stop.max_cost_usd:g} spent (${used.cost_usd:.4f} used)"
        setting = "max_cost_usd"
    else:
        return None
    return f"{spent_what}: raise stop.{setting} in the run's config.yaml, then 'teachloop resume' it"
