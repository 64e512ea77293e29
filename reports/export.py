"""``teachloop export``: a run's training data and improved student, ready to take elsewhere.

The data is one table with a ``round`` column, in the chat ``messages`` format TRL's
``SFTTrainer`` takes as it is (the prompt the student was trained with, then the answer), saved
with Hugging Face ``datasets`` (``save_to_disk``) and as JSONL. Every row says where it came from:
round, skill, difficulty level, origin (``engine``: the environment's generator; ``llm``: the
teacher LLM's synthesizer; ``revision``: rewritten by the reviser; ``replay``: an earlier round's
sample trained on again), the teacher model and prompt template where an LLM wrote it, the
verifier's reward for its gold answer, the criteria score, and what a reviewer decided about it.
A dataset card and, for the exported student, a model card hold the run's own figures.

Only the run directory is read (and the environment, to rescore gold answers with its verifier).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from datasets import Dataset
from pydantic import BaseModel, ConfigDict

from teachloop.agents.review import ReviewOutcome
from teachloop.agents.scorer import ScoredSample
from teachloop.agents.selector import SelectedSample
from teachloop.agents.synthesizer import MADE_BY
from teachloop.environments.base import Task
from teachloop.foundation.errors import ConfigError, RunDirError
from teachloop.foundation.files import atomic_write_text
from teachloop.foundation.redact import redact
from teachloop.reports.cards import dataset_card, model_card
from teachloop.reports.rundata import RunData

Origin = Literal["engine", "llm", "revision", "replay"]
ModelChoice = Literal["final", "best"]
#: A Hub repository id: ``namespace/name`` (letters, digits, ``-_.``; huggingface_hub's rule).
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class ExportRow(BaseModel):
    """One training example with its provenance (a row of the exported dataset)."""

    model_config = ConfigDict(frozen=True)

    messages: list[dict[str, str]]
    round: int
    skill: str
    level: int
    origin: Origin
    task_id: str
    source: str
    teacher_model: str | None
    prompt_template: str | None
    verifier_reward: float
    criteria_score: float | None
    selection_score: float | None
    review: ReviewOutcome


class ExportResult(BaseModel):
    out: Path
    rows: int
    rounds: list[int]
    model_round: int | None
    partial: bool


def origin_of(sample: SelectedSample) -> Origin:
    task = sample.task
    if sample.origin == "replay":
        return "replay"
    if task.original_question is not None or task.original_answer is not None:
        return "revision"
    return "llm" if MADE_BY in task.metadata else "engine"


def export_rows(run: RunData, verifier: Callable[[Task], float]) -> list[ExportRow]:
    """Every round's training set, in round and selection order, rejected samples excluded (the
    selection a review left is what the round trained on)."""
    rows: list[ExportRow] = []
    store = run.store
    for k in run.round_numbers():
        paths = store.round(k)
        if not (paths.selected.is_file() and paths.rows("sft").is_file()):
            continue
        prompts = {r["task_id"]: r["prompt"] for r in store.read_rows(paths.rows("sft"))}
        scored = (
            {s.task.id: s for s in store.read_models(paths.scored, ScoredSample)}
            if paths.scored.is_file()
            else {}
        )
        review = run.review(k, "data")
        review = review if review and review.applied else None
        before_edit = {e.after.id: e.before for e in review.edited} if review else {}
        for sample in store.read_models(paths.selected, SelectedSample):
            task = sample.task
            made_by = task.metadata.get(MADE_BY) or {}
            score = scored.get(task.id)
            rows.append(
                ExportRow(
                    messages=[*prompts[task.id], {"role": "assistant", "content": task.answer}],
                    round=k,
                    skill=task.skill,
                    level=task.difficulty,
                    origin=origin_of(sample.model_copy(update={"task": before_edit.get(task.id, task)})),
                    task_id=task.id,
                    source=task.source,
                    teacher_model=made_by.get("model"),
                    prompt_template=made_by.get("template"),
                    verifier_reward=verifier(task),
                    criteria_score=score.quality if score else None,
                    selection_score=score.score if score else None,
                    review=review.outcome(task.id) if review else "not_reviewed",
                )
            )
    return rows


def check_hub_repo(repo: str) -> None:
    """``--push-to-hub``'s argument and token, checked before anything is written or sent."""
    if not _REPO_ID.match(repo) or ".." in repo or "--" in repo:
        raise ConfigError(f"--push-to-hub {repo!r} must be a Hub repository id, namespace/name")
    from huggingface_hub import get_token

    if get_token() is None:
        raise ConfigError("--push-to-hub needs a Hugging Face token: set HF_TOKEN or run 'hf auth login'")


def model_round(run: RunData, choice: ModelChoice) -> int | None:
    """The round whose student is exported: the one the run ended with (``final``; an earlier one
    when the guard rolled the last back) or the best by overall dev accuracy (``best``, the
    earliest of equals). None when no round trained a model that is still on disk."""
    trained = [k for k in run.round_numbers() if k > 0 and run.store.round(k).model.is_dir()]
    if not trained:
        return None
    if choice == "final":
        final = run.summary.get("student_round")
        return final if final in trained else None
    dev = {r["round"]: r["dev"]["accuracy"] for r in run.summary.get("rounds", []) if "dev" in r}
    return max(trained, key=lambda k: (dev.get(k, -1.0), -k))


def export_run(
    run: RunData,
    out: Path,
    verifier: Callable[[Task], float],
    allow_partial: bool = False,
    model: ModelChoice = "final",
) -> ExportResult:
    """Write ``out/dataset`` (save_to_disk), ``out/data.jsonl``, ``out/README.md`` (dataset card),
    ``out/model`` with its model card, and ``out/review_pairs.jsonl`` when reviewers made pairs."""
    partial = run.summary.get("status") != "complete"
    if partial and not allow_partial:
        raise RunDirError(
            f"{run.root} is not finished ({_where(run)}); finish it with 'teachloop resume {run.root}' "
            "or pass --allow-partial to export what it has"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"export directory {out} already exists and is not empty; choose another --out")
    rows = export_rows(run, verifier)
    if not rows:
        raise RunDirError(f"{run.root} has no training data yet (no round selected samples)")
    out.mkdir(parents=True, exist_ok=True)
    records = [r.model_dump(mode="json") for r in rows]
    dataset = Dataset.from_list(records)
    dataset.save_to_disk(str(out / "dataset"))
    atomic_write_text(out / "data.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    config = dict(redact(run.config))
    pairs = [
        line
        for k in run.round_numbers()
        if (path := run.store.round(k).review_rows("pairs")).is_file()
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    if pairs:  # what reviewers' rejections and edits taught, for criteria mine --pairs
        atomic_write_text(out / "review_pairs.jsonl", "".join(line + "\n" for line in pairs))
    jsonl_bytes = (out / "data.jsonl").stat().st_size
    atomic_write_text(out / "README.md", dataset_card(run, rows, config, partial, jsonl_bytes))
    k = model_round(run, model)
    if k is not None:
        shutil.copytree(run.store.round(k).model, out / "model")
        atomic_write_text(out / "model" / "README.md", model_card(run, k, model, rows, config))
    return ExportResult(
        out=out, rows=len(rows), rounds=sorted({r.round for r in rows}), model_round=k, partial=partial
    )


def _where(run: RunData) -> str:
    done = [r["round"] for r in run.summary.get("rounds", []) if "dev" in r]
    return f"status {run.summary.get('status', 'not started')}, evaluated rounds: {done or 'none'}"


def push_to_hub(result: ExportResult, repo: str) -> None:
    """Upload the exported dataset (with its card) and the model (with its card) to the Hub; the
    model goes to ``repo`` + ``-model``. Needs the network: not exercised by the tests."""
    from datasets import load_from_disk
    from huggingface_hub import HfApi

    load_from_disk(str(result.out / "dataset")).push_to_hub(repo)
    api = HfApi()
    api.upload_file(
        path_or_fileobj=str(result.out / "README.md"),
        path_in_repo="README.md",
        repo_id=repo,
        repo_type="dataset",
    )
    if result.model_round is not None:
        api.create_repo(f"{repo}-model", exist_ok=True)
        api.upload_folder(folder_path=str(result.out / "model"), repo_id=f"{repo}-model")
