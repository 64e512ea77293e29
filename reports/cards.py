"""The dataset card and model card ``teachloop export`` writes: README.md files with YAML metadata
(the Hugging Face Hub reads it) and the run's own figures, counted from what is exported.

Numbers come from the exported rows and the run's ``summary.json``, never from the config's
intentions: a card says how many rows there are, not how many were planned.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import yaml

from teachloop.reports.rundata import RunData

if TYPE_CHECKING:
    from teachloop.reports.export import ExportRow, ModelChoice

#: Students named by an alias, and the Hub model they are.
_HUB_MODELS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}

_COLUMNS = {
    "messages": "the chat: the prompt the student was trained with, then the gold answer (assistant)",
    "round": "the loop round that made and trained on the row",
    "skill": "the environment skill the row teaches",
    "level": "difficulty level the row was made at",
    "origin": "engine (environment generator), llm (teacher LLM), revision (rewritten by the reviser), "
    "replay (an earlier round's row trained on again)",
    "task_id": "content hash of the task",
    "source": "what made the task, as the run recorded it",
    "teacher_model": "the teacher LLM that wrote the text (null when no LLM did)",
    "prompt_template": "that LLM's prompt template, name@sha256 prefix (null when no LLM did)",
    "verifier_reward": "the environment's verifier on the gold answer (1.0: passes)",
    "criteria_score": "mined quality criteria's score (null when the run mined none)",
    "selection_score": "the score the selector ranked by",
    "review": "not_reviewed, approved or edited by a reviewer (rejected rows are not exported)",
}


def _size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < bound:
            return name
    return "100K<n<1M"


def _front_matter(meta: dict[str, Any]) -> str:
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n"


def _counts(title: str, counts: Counter[Any]) -> list[str]:
    lines = [f"| {title} | rows |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    return [*lines, ""]


def _brains(config: dict[str, Any]) -> str:
    """Each role's brain; CritiQ's manager only when the run mined criteria."""
    teacher = config.get("teacher") or {}
    brains = dict(teacher.get("brains") or {})
    if not (teacher.get("criteria") or {}).get("pairs"):
        brains.pop("criteria_manager", None)
    models = {k: v for k, v in ((teacher.get("llm") or {}).items()) if k == "model" and v}
    used = ", ".join(f"{k} {v}" for k, v in brains.items()) or "heuristic"
    return f"{used} (teacher model {models['model']})" if models and "openai" in brains.values() else used


def dataset_card(
    run: RunData, rows: list[ExportRow], config: dict[str, Any], partial: bool, jsonl_bytes: int
) -> str:
    n = len(rows)
    meta = {
        "pretty_name": f"teachloop {run.root.name}",
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["teachloop", "synthetic", "sft"],
        "size_categories": [_size_category(n)],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data.jsonl"}]}],
        "dataset_info": {"splits": [{"name": "train", "num_examples": n, "num_bytes": jsonl_bytes}]},
    }
    rounds = Counter(r.round for r in rows)
    teacher = config.get("teacher") or {}
    lines = [
        _front_matter(meta),
        f"# Training data of teachloop run {run.root.name}",
        "",
        f"{n} chat examples (`messages`) made over {len(rounds)} round(s) by teachloop's teacher agents "
        f"for the student `{config.get('student')}` on environment `{config.get('env')}`, each checked "
        "by the environment's verifier before it was trained on. Load with "
        "`datasets.load_from_disk('dataset')` or from `data.jsonl`; TRL's `SFTTrainer` trains on it as it is.",
        "",
        "## How it was made",
        "",
        f"- policy `{config.get('policy')}`, {teacher.get('samples_per_round')} samples planned per round, "
        f"{teacher.get('oversample')}x candidates made, selection "
        f"`{(teacher.get('scoring') or {}).get('selection')}`",
        f"- teacher brains: {_brains(config)}",
        f"- seed {config.get('seed')}; run status: {'partial (unfinished run)' if partial else 'complete'}",
        "",
        "## Size",
        "",
        f"{n} rows; `data.jsonl` is {jsonl_bytes} bytes.",
        "",
        *_counts("round", rounds),
        *_counts("skill", Counter(r.skill for r in rows)),
        *_counts("origin", Counter(r.origin for r in rows)),
        *_counts("review", Counter(r.review for r in rows)),
        "## Columns",
        "",
        *[f"- `{k}`: {v}" for k, v in _COLUMNS.items()],
        "",
    ]
    return "\n".join(lines)


def _pct(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "n/a"
    low, high = entry["ci95"]
    return (
        f"{100 * entry['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] ({entry['solved']}/{entry['n']})"
    )


def model_card(
    run: RunData, k: int, choice: ModelChoice, rows: list[ExportRow], config: dict[str, Any]
) -> str:
    rounds = {r["round"]: r for r in run.summary.get("rounds", [])}
    student = str(config.get("student"))
    meta: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": "text-generation"}
    if base := _HUB_MODELS.get(student):
        meta["base_model"] = base
    meta["tags"] = ["teachloop", "trl", str((config.get("train") or {}).get("trainer", "sft"))]
    used = [r for r in rows if r.round <= k]
    why = (
        "the model the run ended with"
        if choice == "final"
        else "the round with the best overall dev accuracy"
    )
    lines = [
        _front_matter(meta),
        f"# `{student}` after round {k} of teachloop run {run.root.name}",
        "",
        f"Base model: `{student}`. Trained by teachloop over rounds 1..{k} ({why}; the run has "
        f"{max(rounds, default=0)} round(s)) on environment `{config.get('env')}`.",
        "",
        "## Accuracy",
        "",
        "Per skill, on the run's fixed held-out splits (95% Wilson intervals, solved/items); round 0 is "
        "the base model.",
        "",
        "| skill | dev round 0 | dev round {k} | test round 0 | test round {k} |".replace("{k}", str(k)),
        "|---|---|---|---|---|",
    ]
    first, chosen = rounds.get(0, {}), rounds.get(k, {})
    skills = sorted((chosen.get("dev") or {}).get("skills", {}))
    for skill in skills:
        cells = [
            _pct(((r.get(split) or {}).get("skills") or {}).get(skill))
            for split in ("dev", "test")
            for r in (first, chosen)
        ]
        lines.append(f"| {skill} | {' | '.join(cells)} |")
    overall = [_pct(r.get(split)) for split in ("dev", "test") for r in (first, chosen)]
    lines += [f"| all | {' | '.join(overall)} |", ""]
    lines += [
        "## Data used",
        "",
        f"{len(used)} examples from rounds 1..{k} (the exported dataset's rows with `round` <= {k}):",
        "",
        *_counts("skill", Counter(r.skill for r in used)),
    ]
    return "\n".join(lines)
