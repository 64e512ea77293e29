"""The run directory: where every artifact of a run lives, written whole or not at all.

```
<run>/config.yaml        resolved config          <run>/summary.json   per-round numbers
<run>/state.sqlite       LangGraph checkpoints    <run>/traces.sqlite  spans
<run>/splits/            dev.parquet, test.parquet (fixed at setup)
<run>/rounds/<k>/        every file ``RoundPaths`` names
```

Tables are parquet files written by Hugging Face ``datasets``. Columns holding dicts or lists
(task metadata) are stored as JSON strings so skills with different metadata share one schema;
the parquet footer names them, and reading decodes them again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset
from pydantic import BaseModel

from teachloop.foundation.errors import RunDirError
from teachloop.foundation.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clear_stale_temps,
)
from teachloop.foundation.types import Split

M = TypeVar("M", bound=BaseModel)
_JSON_COLUMNS = b"teachloop_json_columns"


@dataclass(frozen=True)
class RoundPaths:
    """Every artifact of one round, named in one place (nodes write them, reports read them)."""

    dir: Path

    def eval(self, split: Split) -> Path:
        """The student's answers and verdicts on a split (ItemResult rows)."""
        return self.dir / f"eval_{split}.parquet"

    @property
    def metrics(self) -> Path:
        """Per-skill accuracy with intervals, by split (EvalSummary)."""
        return self.dir / "metrics.json"

    @property
    def feedback(self) -> Path:
        """What the teacher saw of the dev evaluation (open-ended, skill list or skill tree)."""
        return self.dir / "feedback.json"

    @property
    def weakness(self) -> Path:
        """The diagnosis (WeaknessReport)."""
        return self.dir / "weakness.json"

    @property
    def curriculum(self) -> Path:
        """Each skill's generation level for this round and why (the ``curriculum`` policy)."""
        return self.dir / "curriculum.json"

    @property
    def probe(self) -> Path:
        """The student's answers to the level probes the curriculum chose this round's levels from."""
        return self.dir / "probe.parquet"

    @property
    def plan(self) -> Path:
        return self.dir / "plan.json"

    @property
    def generated(self) -> Path:
        return self.dir / "generated.parquet"

    @property
    def revisions(self) -> Path:
        """CoachLM (original, revised) records, kept or not: training data for a reviser."""
        return self.dir / "revisions.parquet"

    @property
    def revised(self) -> Path:
        return self.dir / "revised.parquet"

    @property
    def scored(self) -> Path:
        return self.dir / "scored.parquet"

    @property
    def selected(self) -> Path:
        return self.dir / "selected.parquet"

    @property
    def selected_unreviewed(self) -> Path:
        """What select chose before a data review removed or edited samples (``selected``)."""
        return self.dir / "selected_unreviewed.parquet"

    def rows(self, trainer: Literal["sft", "dpo", "grpo"]) -> Path:
        """The trainer-ready table of one recipe (prompt/completion, preference pairs, GRPO prompts)."""
        return self.dir / f"{trainer}.parquet"

    @property
    def rollouts(self) -> Path:
        """The student's own samples of DPO/GRPO tasks, with verdicts."""
        return self.dir / "rollouts.parquet"

    @property
    def train_job(self) -> Path:
        return self.dir / "train_job.json"

    @property
    def train_log(self) -> Path:
        """Output of an ``accelerate launch`` training process."""
        return self.dir / "train.log"

    @property
    def train_metrics(self) -> Path:
        return self.dir / "train_metrics.json"

    def stage(self, trainer: str) -> Path:
        """A non-final training stage's model (the last stage writes ``model``)."""
        return self.dir / "stages" / trainer

    @property
    def model(self) -> Path:
        """The student after this round."""
        return self.dir / "model"

    def review(self, gate: str) -> Path:
        """A review gate's decision (who, when, what) and, once applied, what it changed."""
        return self.dir / f"review_{gate}.json"

    def review_rows(self, kind: Literal["pairs", "revisions"]) -> Path:
        """What a data review taught: preference pairs (JSONL, ``--pairs``) and reviser records."""
        return self.dir / ("review_pairs.jsonl" if kind == "pairs" else "review_revisions.parquet")

    @property
    def guard(self) -> Path:
        """The forgetting guard's decision on this round's model, with its per-skill evidence."""
        return self.dir / "guard.json"


class RunStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def state_db(self) -> Path:
        return self.root / "state.sqlite"

    @property
    def traces_db(self) -> Path:
        return self.root / "traces.sqlite"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    def round(self, round_: int) -> RoundPaths:
        return RoundPaths(self.root / "rounds" / str(round_))

    def split(self, split: Split) -> Path:
        """A fixed evaluation split (Task rows), written at setup."""
        return self.root / "splits" / f"{split}.parquet"

    def rounds(self) -> list[int]:
        base = self.root / "rounds"
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())

    # -- creation -------------------------------------------------------------------------

    @staticmethod
    def check_creatable(root: Path) -> None:
        """Fail before anything is written if ``root`` cannot become a fresh run directory."""
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise RunDirError(
                f"run directory {root} already exists; use 'teachloop resume {root}' or another --run-dir"
            )
        parent = root.parent
        existing = parent
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise RunDirError(f"cannot create run directory {root}: {existing} is not writable")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=parent):
                pass
        except OSError as err:
            raise RunDirError(f"cannot create run directory {root}: {err.strerror or err}") from None

    def create(self, config_yaml: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, config_yaml)

    # -- tables -----------------------------------------------------------------------------

    def write_models(self, path: Path, rows: Sequence[BaseModel]) -> None:
        self.write_rows(path, [r.model_dump(mode="json") for r in rows], encode_json=True)

    def read_models(self, path: Path, model: type[M]) -> list[M]:
        return [model.model_validate(r) for r in self.read_rows(path)]

    def write_rows(self, path: Path, rows: list[dict[str, Any]], encode_json: bool = False) -> None:
        json_columns = sorted(
            {k for r in rows for k, v in r.items() if isinstance(v, dict | list)} if encode_json else set()
        )
        if json_columns:
            rows = [
                {k: json.dumps(v, ensure_ascii=False) if k in json_columns else v for k, v in r.items()}
                for r in rows
            ]
        table = Dataset.from_list(rows).data.table if rows else pa.table({})
        meta = dict(table.schema.metadata or {})
        meta[_JSON_COLUMNS] = json.dumps(json_columns).encode()
        table = table.replace_schema_metadata(meta)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())

    def read_rows(self, path: Path) -> list[dict[str, Any]]:
        table = pq.read_table(path)
        json_columns = set(json.loads((table.schema.metadata or {}).get(_JSON_COLUMNS, b"[]")))
        rows = table.to_pylist()
        if json_columns:
            rows = [
                {k: json.loads(v) if k in json_columns and v is not None else v for k, v in r.items()}
                for r in rows
            ]
        return rows

    def read_dataset(self, path: Path) -> Dataset:
        return Dataset(pq.read_table(path))

    # -- json -------------------------------------------------------------------------------

    def write_json(self, path: Path, obj: BaseModel | dict[str, Any] | list[Any]) -> None:
        atomic_write_json(path, obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj)

    def read_json(self, path: Path, model: type[M]) -> M:
        return model.model_validate_json(path.read_text())

    def clear_temps(self, path: Path) -> None:
        clear_stale_temps(path.parent, path.name)
