"""Experiment tracking: a run in the tracker a team already uses, beside the run directory.

With ``tracking.backend`` set, a run logs its resolved config as parameters (redacted), and per
round (the round number is the step) dev and test accuracy overall and per skill, samples
planned/generated/selected, seconds per node and the teacher LLM's tokens and cost. A round is
logged once it is final: when a node of a later round has finished, or the run has ended. The
summary (and, through the CLI, the HTML report) is attached as an artifact when the run ends.
The trainers' own logs (TRL's loss, learning rate, ... per step) go to the same run through
``report_to``: :meth:`RunTracking.trainer_logging` sets the environment that transformers'
integrations read, which a training subprocess (``accelerate launch``) inherits.

Backends: MLflow (a local SQLite store works offline; ``teachloop[tracking]``), TensorBoard
(event files; ``teachloop[tracking]``), wandb (offline by default; accepted and checked, not
exercised by the tests). ``tracking.json`` in the run directory remembers the tracker's run id and
the rounds already logged, so a resumed run continues the same tracker run and logs nothing twice.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from teachloop.foundation.errors import ConfigError
from teachloop.foundation.files import atomic_write_text
from teachloop.foundation.redact import redact
from teachloop.tracing.tracking_config import Backend, TrackingConfig

log = logging.getLogger(__name__)
#: Environment variable ``training.common`` reads for ``TrainingArguments.report_to``.
REPORT_TO_ENV = "TEACHLOOP_REPORT_TO"
STATE_FILE = "tracking.json"
INSTALL_HINT = "pip install 'teachloop[tracking]'"
#: Modules each backend needs (MLflow's SQLite store needs SQLAlchemy and Alembic).
_NEEDS: dict[Backend, tuple[str, ...]] = {
    "none": (),
    "mlflow": ("mlflow", "sqlalchemy", "alembic"),
    "tensorboard": ("tensorboard",),
    "wandb": ("wandb",),
}
_MAX_PARAM_CHARS = 500


def check_installed(settings: TrackingConfig) -> None:
    """Fail in one line, before anything is written, when the backend's package is missing."""
    missing = [m for m in _NEEDS[settings.backend] if importlib.util.find_spec(m) is None]
    if missing:
        hint = "pip install wandb" if settings.backend == "wandb" else INSTALL_HINT
        raise ConfigError(f"tracking.backend {settings.backend} needs {', '.join(missing)}: {hint}")


# -- what is logged ------------------------------------------------------------------------------


def params(config: Mapping[str, Any]) -> dict[str, str]:
    """The resolved config as flat ``section.key`` parameters, secrets redacted."""
    flat: dict[str, str] = {}

    def walk(value: Any, where: str) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(v, f"{where}.{k}" if where else str(k))
            return
        text = value if isinstance(value, str) else json.dumps(value)
        flat[where] = text[:_MAX_PARAM_CHARS]

    walk(redact(dict(config)), "")
    return flat


def round_metrics(entry: Mapping[str, Any]) -> dict[str, float]:
    """One round of ``summary.json`` as flat metrics."""
    metrics: dict[str, float] = {}
    for split in ("dev", "test"):
        if split in entry:
            metrics[f"{split}/accuracy"] = entry[split]["accuracy"]
            for skill, m in entry[split]["skills"].items():
                metrics[f"{split}/skill/{skill}"] = m["accuracy"]
    for key, value in (entry.get("samples") or {}).items():
        if isinstance(value, int | float):
            metrics[f"samples/{key}"] = float(value)
    for node, seconds in entry.get("seconds", {}).items():
        metrics[f"seconds/{node}"] = seconds
    llm = entry.get("llm") or {}
    for field in ("prompt_tokens", "completion_tokens", "cost_usd"):
        metrics[f"llm/{field}"] = float(sum(usage.get(field, 0) for usage in llm.values()))
    return metrics


def final_rounds(summary: Mapping[str, Any]) -> list[int]:
    """Rounds no node will add to any more: a later round has started, or the run has ended."""
    rounds = [r["round"] for r in summary["rounds"] if "round" in r]
    if summary["status"] == "complete":
        return rounds
    return [r for r in rounds if any(later > r for later in rounds)]


# -- backends ------------------------------------------------------------------------------------


class Tracker(Protocol):
    """One tracker: created or reattached with the run, then fed rounds and files."""

    run_id: str

    def log_rounds(self, rounds: dict[int, dict[str, float]]) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def trainer_env(self, round_: int) -> dict[str, str]: ...

    def finish(self, ok: bool) -> None: ...


def default_mlflow_uri() -> str:
    return f"sqlite:///{Path('mlruns').resolve() / 'mlflow.db'}"


class _MLflow:
    def __init__(
        self, settings: TrackingConfig, root: Path, run_id: str | None, config: Mapping[str, Any]
    ) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

        self.uri = settings.mlflow_uri or default_mlflow_uri()
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        if run_id is not None:  # a resumed run, or a file attached after the end: the same run
            self.run_id = run_id
            return
        experiment = self.client.get_experiment_by_name(settings.experiment)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            experiment_id = self.client.create_experiment(
                settings.experiment, self._artifact_location(settings)
            )
        run = self.client.create_run(experiment_id, run_name=root.name, tags={"teachloop.run_dir": str(root)})
        self.run_id = run.info.run_id
        items = [Param(k, v) for k, v in params(config).items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def _artifact_location(self, settings: TrackingConfig) -> str | None:
        """Beside a SQLite store (MLflow's own default is ./mlruns of whichever directory it runs in)."""
        if not self.uri.startswith("sqlite:///"):
            return None  # a server decides
        db = Path(self.uri.removeprefix("sqlite:///"))
        return (db.parent / "artifacts" / settings.experiment).resolve().as_uri()

    def log_rounds(self, rounds: dict[int, dict[str, float]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, r) for r, values in rounds.items() for k, v in values.items()]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def trainer_env(self, round_: int) -> dict[str, str]:
        # MLFLOW_MAX_LOG_PARAMS=0: the trainers' arguments change every round (learning rate, output
        # directory) and MLflow refuses a changed parameter; the run's config already holds them.
        return {
            REPORT_TO_ENV: "mlflow",
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_RUN_ID": self.run_id,
            "MLFLOW_MAX_LOG_PARAMS": "0",
        }

    def finish(self, ok: bool) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


class _TensorBoard:
    """Loop scalars in ``<dir>/loop``, each round's trainer logs in ``<dir>/train/round_<k>``."""

    def __init__(
        self, settings: TrackingConfig, root: Path, run_id: str | None, config: Mapping[str, Any]
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.dir = (settings.tensorboard_dir or root / "tensorboard").resolve()
        self.writer = SummaryWriter(log_dir=str(self.dir / "loop"))
        self.run_id = run_id or uuid.uuid4().hex
        if run_id is None:
            table = "\n".join(f"| {k} | {v} |" for k, v in params(config).items())
            self.writer.add_text("config", "| key | value |\n|---|---|\n" + table, 0)

    def log_rounds(self, rounds: dict[int, dict[str, float]]) -> None:
        for r, values in rounds.items():
            for key, value in values.items():
                self.writer.add_scalar(key, value, r)
        self.writer.flush()

    def log_artifact(self, path: Path) -> None:
        if path.suffix == ".json":
            self.writer.add_text(path.stem, "```\n" + path.read_text() + "\n```", 0)
            self.writer.flush()

    def trainer_env(self, round_: int) -> dict[str, str]:
        return {
            REPORT_TO_ENV: "tensorboard",
            "TENSORBOARD_LOGGING_DIR": str(self.dir / "train" / f"round_{round_}"),
        }

    def finish(self, ok: bool) -> None:
        self.writer.close()


class _Wandb:
    """Not exercised by teachloop's tests (wandb is not installed there); offline by default."""

    def __init__(
        self, settings: TrackingConfig, root: Path, run_id: str | None, config: Mapping[str, Any]
    ) -> None:
        import wandb

        self.settings, self.root = settings, root
        self.run_id = run_id or uuid.uuid4().hex[:16]
        self.run = wandb.init(
            project=settings.experiment,
            name=root.name,
            id=self.run_id,
            resume="allow",
            dir=str(root),
            mode=settings.wandb_mode,
            config=params(config),
        )
        self.run.define_metric("round")
        self.run.define_metric("*", step_metric="round")

    def log_rounds(self, rounds: dict[int, dict[str, float]]) -> None:
        for r, values in rounds.items():
            self.run.log({"round": r, **values})

    def log_artifact(self, path: Path) -> None:
        self.run.save(str(path), base_path=str(path.parent), policy="now")

    def trainer_env(self, round_: int) -> dict[str, str]:
        return {
            REPORT_TO_ENV: "wandb",
            "WANDB_PROJECT": self.settings.experiment,
            "WANDB_MODE": self.settings.wandb_mode,
            "WANDB_DIR": str(self.root),
            "WANDB_RUN_ID": self.run_id,
            "WANDB_RESUME": "allow",
        }

    def finish(self, ok: bool) -> None:
        self.run.finish(exit_code=0 if ok else 1)


#: Each backend, built from (settings, run directory, the tracker run to continue or None, config).
_BACKENDS: dict[str, Callable[[TrackingConfig, Path, str | None, Mapping[str, Any]], Tracker]] = {
    "mlflow": _MLflow,
    "tensorboard": _TensorBoard,
    "wandb": _Wandb,
}


# -- a run's tracking ------------------------------------------------------------------------------


class TrackingState(BaseModel):
    """``tracking.json``: which tracker run this run directory logs to, and what it has logged."""

    backend: Backend
    run_id: str
    logged_rounds: list[int] = Field(default_factory=list)


class RunTracking:
    """The run's tracker, with the bookkeeping that makes logging resumable and once-only."""

    def __init__(self, tracker: Tracker, state: TrackingState, path: Path) -> None:
        self.tracker, self.state, self.path = tracker, state, path

    def update(self, summary: Mapping[str, Any]) -> None:
        """Log the rounds of ``summary`` that became final since the last call."""
        entries = {r["round"]: r for r in summary["rounds"] if "round" in r}
        new = [r for r in final_rounds(summary) if r not in self.state.logged_rounds]
        if not new:
            return
        try:
            self.tracker.log_rounds({r: round_metrics(entries[r]) for r in new})
        except Exception as err:  # a tracker server down must not stop the run; tried again next node
            log.warning("tracking: could not log rounds %s (%s: %s)", new, type(err).__name__, err)
            return
        self.state = self.state.model_copy(
            update={"logged_rounds": sorted([*self.state.logged_rounds, *new])}
        )
        atomic_write_text(self.path, self.state.model_dump_json(indent=2))

    def log_artifact(self, path: Path) -> None:
        self.tracker.log_artifact(path)

    def finish(self, ok: bool) -> None:
        self.tracker.finish(ok)

    @contextmanager
    def trainer_logging(self, round_: int) -> Iterator[None]:
        """Point the trainers' ``report_to`` integration at this run while the block trains."""
        env = self.tracker.trainer_env(round_)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def open_tracking(settings: TrackingConfig, root: Path, config: Mapping[str, Any]) -> RunTracking | None:
    """The run's tracker (None when ``backend`` is none): a new tracker run, or the one
    ``tracking.json`` names when the run directory logged before."""
    if settings.backend == "none":
        return None
    check_installed(settings)
    path = root / STATE_FILE
    state = TrackingState.model_validate_json(path.read_text()) if path.is_file() else None
    try:
        tracker = _BACKENDS[settings.backend](settings, root, state.run_id if state else None, config)
    except Exception as err:
        raise ConfigError(
            f"tracking.backend {settings.backend}: cannot open the tracker ({type(err).__name__}: "
            f"{str(err)[:300]}); fix tracking in {root / 'config.yaml'}, then run 'teachloop resume {root}'"
        ) from err
    if state is None:
        state = TrackingState(backend=settings.backend, run_id=tracker.run_id)
        atomic_write_text(path, state.model_dump_json(indent=2))
    return RunTracking(tracker, state, path)


@contextmanager
def trainer_logging(tracking: RunTracking | None, round_: int) -> Iterator[None]:
    """:meth:`RunTracking.trainer_logging`, or nothing when the run is not tracked."""
    if tracking is None:
        yield
        return
    with tracking.trainer_logging(round_):
        yield


def report_to() -> str:
    """``TrainingArguments.report_to`` for the trainer about to be built: the tracked run's backend
    while :func:`trainer_logging` is active (here or in the parent of a launched job), else none."""
    return os.environ.get(REPORT_TO_ENV, "none")
