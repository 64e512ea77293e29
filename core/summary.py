"""``summary.json``: per round, dev and test accuracy (overall and per skill), samples made and
trained on, and seconds per node. Rewritten from the checkpointed state after every node, so it
is current whenever a user looks, and rebuilt on resume if a crash left it behind.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from teachloop.core.config import RunConfig
from teachloop.core.state import LoopState
from teachloop.core.store import RunStore
from teachloop.evals.metrics import EvalSummary


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
    for e in state.get("evals", []):
        summary = EvalSummary.model_validate(e)
        rounds[summary.round]["round"] = summary.round
        rounds[summary.round][summary.split] = _split_entry(summary)
    for counts in state.get("samples", []):
        entry = rounds[counts["round"]]
        entry["round"] = counts["round"]
        entry["samples"] = {k: v for k, v in counts.items() if k != "round"}
    for t in state.get("timings", []):
        entry = rounds[t["round"]]
        entry["round"] = t["round"]
        entry["seconds"][t["node"]] = entry["seconds"].get(t["node"], 0.0) + t["seconds"]
    stop = state.get("stop_reason")
    return {
        "run_id": run_id,
        "env": config.env,
        "student": config.student,
        "policy": config.policy,
        "status": "complete" if stop else "incomplete",
        "stop_reason": stop,
        "total_seconds": round(sum(t["seconds"] for t in state.get("timings", [])), 3),
        "rounds": [rounds[k] for k in sorted(rounds)],
    }


def write_summary(store: RunStore, state: LoopState, config: RunConfig) -> dict[str, Any]:
    summary = build_summary(state, config, store.root.name)
    store.write_json(store.summary_path, summary)
    return summary
