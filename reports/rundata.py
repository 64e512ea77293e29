"""A finished or running run directory, read back for inspection: what ``teachloop inspect`` and
``teachloop report`` show.

Reading needs only the run directory: no environment, model or network, so a run copied from
another machine can be inspected. Every file is optional (a run stopped early has fewer), and
tables are read as plain rows, so a column another version of teachloop added (a judge score,
a revision) shows up instead of failing validation.

A sample is *revised* when it carries the text it had before a reviser rewrote it: fields named
``original_question`` / ``original_answer`` (on the row, its task, the task's metadata or a
``revision`` record). Such a sample is shown as a diff of the original against the revised text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from teachloop.agents.config import Gate
from teachloop.agents.curriculum import Curriculum
from teachloop.agents.diagnoser import WeaknessReport
from teachloop.agents.guard import GuardDecision
from teachloop.agents.planner import Plan
from teachloop.agents.review import GATES, ReviewOutcome, ReviewRecord
from teachloop.evals.metrics import EvalSummary, ItemResult
from teachloop.foundation.errors import RunDirError
from teachloop.foundation.redact import redact
from teachloop.foundation.types import Split
from teachloop.reports.textdiff import DiffPiece, word_diff
from teachloop.tracing.spans import Span, read_spans
from teachloop.tracing.store import RunStore

#: Columns of a scored row that are flags or scores a user may filter or sort on.
_SCORE_FIELDS = ("score", "verified", "duplicate", "contaminated")
_ORIGINAL_FIELDS = ("original_question", "original_answer")


class Sample(BaseModel):
    """One training candidate of a round: what was made, how it scored, whether it was kept."""

    model_config = ConfigDict(frozen=True)

    round: int
    task_id: str
    skill: str
    question: str
    answer: str
    difficulty: int | None = None
    source: str | None = None
    score: float | None = None
    verified: bool | None = None
    duplicate: bool | None = None
    contaminated: bool | None = None
    extra_scores: dict[str, float | bool] = {}
    kept: bool = False
    origin: Literal["new", "replay"] | None = None
    original_question: str | None = None
    original_answer: str | None = None
    review: ReviewOutcome = "not_reviewed"

    @property
    def made_by(self) -> Literal["engine", "llm", "revision", "replay"]:
        """Where a sample came from, as ``teachloop export`` names it: an earlier round (replay),
        the reviser, the teacher LLM, or the environment's generator (engine)."""
        if self.origin == "replay":
            return "replay"
        if self.revised and self.review != "edited":
            return "revision"
        return "llm" if (self.source or "").startswith("teacher:") else "engine"

    @property
    def revised(self) -> bool:
        return (self.original_question is not None and self.original_question != self.question) or (
            self.original_answer is not None and self.original_answer != self.answer
        )

    def diff(self) -> dict[str, list[DiffPiece]] | None:
        """Word-level diffs of question and answer against the originals (None if not revised)."""
        if not self.revised:
            return None
        return {
            "question": word_diff(self.original_question or self.question, self.question),
            "answer": word_diff(self.original_answer or self.answer, self.answer),
        }

    def as_json(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        out["revised"] = self.revised
        out["made_by"] = self.made_by
        diff = self.diff()
        out["diff"] = {k: [p.model_dump() for p in v] for k, v in diff.items()} if diff else None
        return out


class RoundData(BaseModel):
    """Everything one round left on disk. Round 0 has evaluations and a diagnosis only."""

    model_config = ConfigDict(frozen=True)

    round: int
    evals: dict[str, EvalSummary] = {}
    weakness: WeaknessReport | None = None
    plan: Plan | None = None
    curriculum: Curriculum | None = None
    guard: GuardDecision | None = None
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    train_metrics: dict[str, float] | None = None


def _originals(row: dict[str, Any]) -> dict[str, str]:
    """``original_question`` / ``original_answer`` wherever a reviser put them on a row."""
    task = row.get("task") if isinstance(row.get("task"), dict) else {}
    places = [row, row.get("revision"), task, task.get("metadata") if task else None]
    found: dict[str, str] = {}
    for place in places:
        if isinstance(place, dict):
            for key in _ORIGINAL_FIELDS:
                if isinstance(place.get(key), str) and key not in found:
                    found[key] = place[key]
    return found


def _task_of(row: dict[str, Any]) -> dict[str, Any]:
    task = row.get("task")
    return task if isinstance(task, dict) else row


class RunData:
    """Lazy, read-only access to a run directory's artifacts."""

    def __init__(self, root: Path) -> None:
        self.store = RunStore(root)
        if not self.store.config_path.is_file():
            raise RunDirError(f"{root} is not a teachloop run directory (no config.yaml)")

    @property
    def root(self) -> Path:
        return self.store.root

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's config, with anything that looks like a secret redacted."""
        data = yaml.safe_load(self.store.config_path.read_text()) or {}
        return dict(redact(data))

    @cached_property
    def summary(self) -> dict[str, Any]:
        path = self.store.summary_path
        return dict(json.loads(path.read_text())) if path.is_file() else {"rounds": []}

    def round_numbers(self) -> list[int]:
        return self.store.rounds()

    @staticmethod
    def _file(path: Path) -> Path | None:
        return path if path.is_file() else None

    def round(self, round_: int) -> RoundData:
        entry: dict[str, Any] = next(
            (r for r in self.summary.get("rounds", []) if r.get("round") == round_), {}
        )
        paths = self.store.round(round_)
        evals = {}
        if metrics := self._file(paths.metrics):
            evals = {k: EvalSummary.model_validate(v) for k, v in json.loads(metrics.read_text()).items()}
        weakness = self._file(paths.weakness)
        plan = self._file(paths.plan)
        curriculum = self._file(paths.curriculum)
        guard = self._file(paths.guard)
        train = self._file(paths.train_metrics)
        return RoundData(
            round=round_,
            evals=evals,
            weakness=WeaknessReport.model_validate_json(weakness.read_text()) if weakness else None,
            plan=Plan.model_validate_json(plan.read_text()) if plan else None,
            curriculum=Curriculum.model_validate_json(curriculum.read_text()) if curriculum else None,
            guard=GuardDecision.model_validate_json(guard.read_text()) if guard else None,
            counts=entry.get("samples", {}),
            seconds=entry.get("seconds", {}),
            train_metrics=json.loads(train.read_text()) if train else None,
        )

    def review(self, round_: int, gate: Gate) -> ReviewRecord | None:
        """A round's review decision at ``gate`` (applied or waiting for ``resume``), if any."""
        path = self._file(self.store.round(round_).review(gate))
        return ReviewRecord.model_validate_json(path.read_text()) if path else None

    def reviews(self) -> list[ReviewRecord]:
        return [r for k in self.round_numbers() for g in GATES if (r := self.review(k, g))]

    def rounds(self) -> list[RoundData]:
        return [self.round(k) for k in self.round_numbers()]

    def eval_items(self, round_: int, split: Split) -> list[ItemResult]:
        path = self._file(self.store.round(round_).eval(split))
        return self.store.read_models(path, ItemResult) if path else []

    def _rows(self, path: Path) -> list[dict[str, Any]]:
        return self.store.read_rows(path) if path.is_file() else []

    def samples(self, round_: int) -> list[Sample]:
        """A round's candidates (scored, or only generated if scoring has not run) and its replays."""
        paths = self.store.round(round_)
        tables = {
            "generated": self._rows(paths.generated),
            "revised": self._rows(paths.revised),
            "scored": self._rows(paths.scored),
            "selected": self._rows(paths.selected),
        }
        originals: dict[str, dict[str, str]] = {}
        for rows in tables.values():
            for row in rows:
                if found := _originals(row):
                    originals.setdefault(str(_task_of(row).get("id", "")), {}).update(found)
        kept = {str(_task_of(r).get("id")): r.get("origin", "new") for r in tables["selected"]}
        candidates = tables["scored"] or tables["generated"]
        samples = [self._sample(round_, row, kept, originals) for row in candidates]
        seen = {s.task_id for s in samples}
        samples += [
            self._sample(round_, row, kept, originals)
            for row in tables["selected"]
            if str(_task_of(row).get("id")) not in seen
        ]
        review = self.review(round_, "data")
        return [_reviewed(s, review) for s in samples] if review and review.applied else samples

    @staticmethod
    def _sample(
        round_: int, row: dict[str, Any], kept: dict[str, str], originals: dict[str, dict[str, str]]
    ) -> Sample:
        task = _task_of(row)
        task_id = str(task.get("id", ""))
        scores = {k: row[k] for k in _SCORE_FIELDS if k in row and row is not task}
        extra = {
            k: v
            for k, v in row.items()
            if row is not task
            and k not in (*_SCORE_FIELDS, "task", "origin", "revision", *_ORIGINAL_FIELDS)
            and isinstance(v, bool | int | float)
        }
        return Sample(
            round=round_,
            task_id=task_id,
            skill=str(task.get("skill", "")),
            question=str(task.get("question", "")),
            answer=str(task.get("answer", "")),
            difficulty=task.get("difficulty"),
            source=task.get("source"),
            **scores,
            extra_scores=extra,
            kept=task_id in kept,
            origin=kept.get(task_id),
            **{**_originals(row), **originals.get(task_id, {})},
        )

    def all_samples(self, rounds: Iterable[int] | None = None) -> list[Sample]:
        return [s for k in (rounds if rounds is not None else self.round_numbers()) for s in self.samples(k)]

    @cached_property
    def spans(self) -> list[Span]:
        return read_spans(self.store.traces_db)


def _reviewed(sample: Sample, review: ReviewRecord) -> Sample:
    """A sample of a reviewed round with the reviewer's outcome; an edited one shows the edit."""
    edited = next((e for e in review.edited if e.after.id == sample.task_id), None)
    if edited is not None:
        return sample.model_copy(
            update={
                "review": "edited",
                "answer": edited.after.answer,
                "original_answer": edited.before.answer,
            }
        )
    if any(t.id == sample.task_id for t in review.rejected):
        return sample.model_copy(update={"review": "rejected"})
    return sample.model_copy(update={"review": "approved"}) if sample.kept else sample


class TraceNode(BaseModel):
    """A span with its children, in start order."""

    span: Span
    children: list[TraceNode] = []

    def walk(self, depth: int = 0) -> Iterable[tuple[int, Span]]:
        yield depth, self.span
        for child in self.children:
            yield from child.walk(depth + 1)

    def as_json(self, origin: float) -> dict[str, Any]:
        s = self.span
        return {
            "id": s.id,
            "kind": s.kind,
            "name": s.name,
            "round": s.round,
            "offset_seconds": round(s.start - origin, 4),
            "seconds": round(s.seconds, 4),
            "status": s.status,
            "error": s.error,
            "inputs": s.decoded("inputs"),
            "outputs": s.decoded("outputs"),
            "attrs": s.decoded("attrs"),
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
            "children": [c.as_json(origin) for c in self.children],
        }


def trace_tree(spans: list[Span], round_: int | None = None) -> list[TraceNode]:
    """The spans of one round (or all) as trees; a span whose parent is not shown is a root."""
    chosen = [s for s in spans if round_ is None or s.round == round_]
    nodes = {s.id: TraceNode(span=s) for s in chosen}
    roots: list[TraceNode] = []
    for s in sorted(chosen, key=lambda s: s.start):
        parent = nodes.get(s.parent_id) if s.parent_id else None
        (parent.children if parent else roots).append(nodes[s.id])
    return roots
