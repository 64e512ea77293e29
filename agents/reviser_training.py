"""Fine-tune a local reviser (CoachLM) on the revisions that runs kept.

Every run with the LLM reviser stores each attempt in ``rounds/<k>/revisions.parquet``: the exact
prompt the reviser saw, the raw sample, the rewrite, the judge's verdict and whether it was kept.
The kept ones (the judge preferred the rewrite with confidence and its answer passed the check)
are CoachLM's training pairs: prompt -> the revision as the JSON the reviser prompt asks for. A
model trained on them with TRL's SFTTrainer can be served (``transformers serve``, ``vllm serve``)
and used as the reviser of later runs through ``teacher.llm.endpoints.reviser``, so the expensive
teacher's corrections are distilled into a cheap local coach.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from datasets import Dataset

from teachloop.agents.reviser import RevisionRecord
from teachloop.foundation.errors import ConfigError, RunDirError
from teachloop.tracing.store import RunStore
from teachloop.training.config import TrainConfig

log = logging.getLogger(__name__)


def revision_records(run_dirs: list[Path]) -> list[RevisionRecord]:
    """Every revision attempt stored in the given run directories, in round order: the reviser's,
    then the answers a reviewer corrected at a data review gate."""
    records: list[RevisionRecord] = []
    for root in run_dirs:
        store = RunStore(root)
        if not store.config_path.is_file():
            raise RunDirError(f"{root} is not a teachloop run directory (no config.yaml)")
        for round_ in store.rounds():
            paths = store.round(round_)
            for path in (paths.revisions, paths.review_rows("revisions")):
                if path.is_file():
                    records += store.read_models(path, RevisionRecord)
    return records


def reviser_rows(records: list[RevisionRecord], min_confidence: float = 0.0) -> list[dict[str, Any]]:
    """Conversational prompt/completion rows from the kept revisions (the loss is on the revision)."""
    rows = []
    for r in records:
        if not r.kept or not r.prompt or (r.judge_confidence or 0.0) < min_confidence:
            continue
        revision = {
            "problems": r.problems_fixed,
            "question": r.revised_question,
            "solution": r.revised_solution or "",
            "answer": r.revised_answer,
        }
        rows.append(
            {
                "prompt": [m.model_dump() for m in r.prompt],
                "completion": [{"role": "assistant", "content": json.dumps(revision, ensure_ascii=False)}],
                "task_id": r.task_id,
                "skill": r.skill,
            }
        )
    return rows


def train_reviser(
    run_dirs: list[Path],
    base_model: Path,
    out_dir: Path,
    settings: TrainConfig,
    min_confidence: float = 0.0,
    seed: int = 0,
) -> dict[str, float]:
    """Fine-tune ``base_model`` on the kept revisions of ``run_dirs`` and save it to ``out_dir``."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"output directory {out_dir} already exists; choose another --out")
    records = revision_records(run_dirs)
    rows = reviser_rows(records, min_confidence)
    if not rows:
        raise ConfigError(
            f"no kept revisions in {', '.join(map(str, run_dirs))} ({len(records)} attempts stored); "
            "run with --set teacher.brains.reviser=openai first"
        )
    log.info("training a reviser on %d kept revisions of %d attempts", len(rows), len(records))
    from teachloop.training.sft import train_sft  # torch and TRL only once the input is known good

    metrics = train_sft(base_model, Dataset.from_list(rows), out_dir, settings, seed)
    metrics["pairs"] = float(len(rows))
    return metrics
