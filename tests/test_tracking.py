"""Experiment tracking read back from the real stores: a tiny tracked run's config, per-round
accuracy, samples, timings, LLM usage, artifacts and TRL's own step logs in a local MLflow
(SQLite) store, and the same scalars in TensorBoard event files; once-only logging on resume."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from helpers import cli_in_process, tiny_run_args
from teachloop.tracing.tracking import RunTracking, TrackingState, final_rounds, params

# CI installs both (scripts/setup.sh: the dev extra includes teachloop[tracking]); importing them here
# would configure MLflow's logging before the CLI quiets it
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("mlflow", "sqlalchemy", "tensorboard")),
    reason="pip install 'teachloop[tracking]'",
)

SMALL = ("--samples-per-round", "8", "--set", "eval.dev_per_skill=1", "--set", "eval.test_per_skill=1")


def _tracked_run(
    tmp_path: Path, model_cache: Path, capsys: pytest.CaptureFixture[str], *settings: str
) -> tuple[Path, dict[str, Any]]:
    """A tiny 1-round run with ``--quiet``: no progress, the closing table only."""
    run_dir = tmp_path / "run"
    args = [*tiny_run_args(model_cache, run_dir, rounds=1), *SMALL, "--quiet"]
    for setting in settings:
        args += ["--set", setting]
    assert cli_in_process(*args) == 0
    captured = capsys.readouterr()
    assert "test accuracy by round" in captured.out
    assert not [ln for ln in captured.err.splitlines() if ln.startswith(("round ", "run directory"))]
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def test_mlflow_run_holds_config_rounds_artifacts_and_trl_steps(
    tmp_path: Path, model_cache: Path, tiny_student: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    run_dir, summary = _tracked_run(
        tmp_path,
        model_cache,
        capsys,
        "tracking.backend=mlflow",
        f"tracking.mlflow_uri={uri}",
        "tracking.experiment=t19",
    )
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("t19")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    assert json.loads((run_dir / "tracking.json").read_text())["run_id"] == run.info.run_id
    p = run.data.params
    assert (p["env"], p["rounds"], p["train.learning_rate"], p["tracking.backend"]) == (
        "reasoning-basics",
        "1",
        "0.0002",
        "mlflow",
    )

    def history(key: str) -> dict[int, float]:
        return {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}

    rounds = summary["rounds"]
    for split in ("dev", "test"):
        assert history(f"{split}/accuracy") == {r["round"]: r[split]["accuracy"] for r in rounds}
        for skill in rounds[0][split]["skills"]:
            assert history(f"{split}/skill/{skill}") == {
                r["round"]: r[split]["skills"][skill]["accuracy"] for r in rounds
            }
    assert history("samples/selected") == {1: 8.0}
    assert history("seconds/train") == {1: pytest.approx(rounds[1]["seconds"]["train"])}
    assert history("seconds/evaluate") == {
        r["round"]: pytest.approx(r["seconds"]["evaluate"]) for r in rounds
    }
    assert history("llm/prompt_tokens") == {0: 0.0, 1: 0.0}  # the heuristic teacher
    # TRL's own logging (report_to): one loss per optimizer step (8 samples, batch 8), then its summary
    assert list(history("loss")) == [1] and "train_loss" in run.data.metrics
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "report.html"} <= names
    local = client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == summary


def test_tensorboard_event_files_hold_each_rounds_scalars(
    tmp_path: Path, model_cache: Path, tiny_student: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, summary = _tracked_run(tmp_path, model_cache, capsys, "tracking.backend=tensorboard")
    loop = EventAccumulator(str(run_dir / "tensorboard" / "loop"))
    loop.Reload()
    for split in ("dev", "test"):
        events = loop.Scalars(f"{split}/accuracy")
        assert [(e.step, e.value) for e in events] == [
            (r["round"], pytest.approx(r[split]["accuracy"])) for r in summary["rounds"]
        ]
    assert [(e.step, e.value) for e in loop.Scalars("samples/selected")] == [(1, 8.0)]
    train = EventAccumulator(str(run_dir / "tensorboard" / "train" / "round_1"))
    train.Reload()
    assert [e.step for e in train.Scalars("train/loss")] == [1]  # TRL's report_to


class _Recorder:
    run_id = "r1"

    def __init__(self) -> None:
        self.logged: list[dict[int, dict[str, float]]] = []

    def log_rounds(self, rounds: dict[int, dict[str, float]]) -> None:
        self.logged.append(rounds)

    def log_artifact(self, path: Path) -> None: ...

    def trainer_env(self, round_: int) -> dict[str, str]:
        return {}

    def finish(self, ok: bool) -> None: ...


def _round(r: int) -> dict[str, Any]:
    return {
        "round": r,
        "dev": {"accuracy": r / 10, "skills": {"a": {"accuracy": r / 10}}},
        "seconds": {"evaluate": 1.0},
    }


def test_a_round_is_logged_once_when_final_and_a_resume_does_not_log_it_again(tmp_path: Path) -> None:
    running = {"status": "incomplete", "rounds": [_round(0), _round(1)]}
    assert final_rounds(running) == [0]  # round 1 may still gain node timings
    assert final_rounds({**running, "status": "complete"}) == [0, 1]
    recorder = _Recorder()
    tracking = RunTracking(recorder, TrackingState(backend="mlflow", run_id="r1"), tmp_path / "tracking.json")
    tracking.update(running)
    tracking.update(running)
    assert [list(batch) for batch in recorder.logged] == [[0]]
    resumed = _Recorder()  # a new process reads tracking.json back
    state = TrackingState.model_validate_json((tmp_path / "tracking.json").read_text())
    RunTracking(resumed, state, tmp_path / "tracking.json").update({**running, "status": "complete"})
    assert [list(batch) for batch in resumed.logged] == [[1]]
    assert resumed.logged[0][1] == {
        "dev/accuracy": 0.1,
        "dev/skill/a": 0.1,
        "seconds/evaluate": 1.0,
        **{f"llm/{k}": 0.0 for k in ("prompt_tokens", "completion_tokens", "cost_usd")},
    }


def test_params_are_flat_and_redacted() -> None:
    config = {
        "teacher": {"llm": {"api_key": "sk-abcdefghijklmnopqrstuvwx", "base_url": "http://u:pw@h/v1"}},
        "tags": [],
    }
    flat = params(config)
    assert flat["teacher.llm.api_key"] == "[REDACTED]"
    assert "pw" not in flat["teacher.llm.base_url"] and flat["tags"] == "[]"


def test_an_unusable_tracker_fails_in_one_line_before_anything_is_written(
    tmp_path: Path, model_cache: Path, tiny_student: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    args = tiny_run_args(model_cache, run_dir, rounds=0)
    assert cli_in_process(*args, "--set", "tracking.backend=comet") == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: bad config value tracking.backend: Input should be 'none', 'mlflow'")
    if importlib.util.find_spec("wandb") is None:  # accepted, but only with the package
        assert cli_in_process(*args, "--set", "tracking.backend=wandb") == 2
        assert capsys.readouterr().err.splitlines() == [
            "error: tracking.backend wandb needs wandb: pip install wandb"
        ]
    assert not run_dir.exists()


def test_a_tracker_that_fails_costs_a_warning_and_the_rounds_are_logged_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Down(_Recorder):
        up = False

        def log_rounds(self, rounds: dict[int, dict[str, float]]) -> None:
            if not self.up:
                raise ConnectionError("tracker unreachable")
            super().log_rounds(rounds)

    tracker = Down()
    tracking = RunTracking(tracker, TrackingState(backend="mlflow", run_id="r1"), tmp_path / "tracking.json")
    running = {"status": "incomplete", "rounds": [_round(0), _round(1)]}
    tracking.update(running)  # no exception: the run goes on
    assert "could not log rounds [0]" in caplog.text and tracking.state.logged_rounds == []
    tracker.up = True
    tracking.update(running)
    assert [list(batch) for batch in tracker.logged] == [[0]] and tracking.state.logged_rounds == [0]
