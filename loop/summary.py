"""``summary.json``: per round, dev and test accuracy (overall and per skill), samples made and
trained on, each skill's generation level, the forgetting guard's decision, seconds per node and
teacher LLM usage per role (with run totals); ``student_round`` names the round whose model the
run ends with (an earlier one when the guard rolled the last round back); ``status`` is complete,
stopped (the teacher LLM budget is spent: resumable) or incomplete. Rewritten from the
checkpointed state after every node, so it is current whenever a user looks, and rebuilt on
resume if a crash left it behind.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from teachloop.agents.guard import kept_round
from teachloop.evals.metrics import EvalSummary
from teachloop.loop.budget import budget_stop
from teachloop.loop.config import RunConfig
from teachloop.loop.state import LoopState
from teachloop.tracing.store import RunStore


def _split_entry(summary: EvalSummary) -> dict[str, Any]:
    o = summary.overall
    return {
        "accuracy": o.accuracy,
        "ci95": [o.ci_low, o.ci_high],
        "n": o.n,
        "solved": o.solved,
        "mean_reward": o.mean_reward,
        "skill_mean": summary.skill_mean,
        "skills": {
            k: {"accuracy": m.accuracy, "ci95": [m.ci_low, m.ci_high], "n": m.n, "solved": m.solved}
            for k, m in summary.skills.items()
        },
    }


def build_summary(state: LoopState, config: RunConfig, run_id: str) -> dict[str, Any]:
    rounds: dict[int, dict[str, Any]] = defaultdict(lambda: {"seconds": {}})
    for summary in state.get("evals", []):
        rounds[summary.round]["round"] = summary.round
        rounds[summary.round][summary.split] = _split_entry(summary)
    for counts in state.get("samples", []):
        entry = rounds[counts.round]
        entry["round"] = counts.round
        entry["samples"] = counts.model_dump(exclude={"round"})
    totals: dict[str, dict[str, float]] = {}
    for spent in state.get("llm_usage", []):
        entry = rounds[spent.round]
        entry["round"] = spent.round
        for role, usage in spent.roles.items():
            _add_usage(entry.setdefault("llm", {}).setdefault(role, {}), usage.model_dump())
            _add_usage(totals.setdefault(role, {}), usage.model_dump())
    for t in state.get("timings", []):
        entry = rounds[t.round]
        entry["round"] = t.round
        entry["seconds"][t.node] = entry["seconds"].get(t.node, 0.0) + t.seconds
    for plan in state.get("plans", []):
        rounds[plan.round].update(round=plan.round, levels={a.skill: a.difficulty for a in plan.allocations})
    guards = state.get("guards", [])
    for d in guards:
        rounds[d.round]["guard"] = {
            "action": d.action,
            "compared_with_round": d.baseline_round,
            "dropped": d.dropped,
            "reason": d.reason,
        }
    last = max(rounds, default=0)
    stop = state.get("stop_reason")
    paused = None if stop else budget_stop(state, config.stop)
    return {
        "run_id": run_id,
        "env": config.env,
        "student": config.student,
        "policy": config.policy,
        "status": "complete" if stop else "stopped" if paused else "incomplete",
        "stop_reason": stop or paused,
        "total_seconds": round(sum(t.seconds for t in state.get("timings", [])), 3),
        "rounds": [rounds[k] for k in sorted(rounds)],
        "student_round": kept_round(guards, last),
        "llm_usage": totals,
    }


def _add_usage(into: dict[str, float], usage: dict[str, float]) -> None:
    """Sum one node's usage of a role into a running total (cost rounded to micro-dollars)."""
    for key, value in usage.items():
        into[key] = round(into.get(key, 0) + value, 6)


def write_summary(store: RunStore, state: LoopState, config: RunConfig) -> dict[str, Any]:
    summary = build_summary(state, config, store.root.name)
    store.write_json(store.summary_path, summary)
    return summary
