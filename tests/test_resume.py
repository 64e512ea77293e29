"""Kill the loop for real (SIGKILL) inside nodes, resume, and check the run ends up exactly as an
uninterrupted one: bit-identical weights reached through bit-identical per-step losses, the same
rounds, samples and accuracies, and no finished node run twice.

Each kill lands at a moment the process halts at itself (tests/killpoint.py), so it is known to be
inside its node: mid-training with a step taken and nothing saved, and right after round 2's model
was published but before its checkpoint was written (the one node a resume must run again)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from killpoint import KillPoint, kill_at

from helpers import assert_whole, cli_env, cli_in_process, tiny_run_args, trained
from teachloop.agents.selector import SelectedSample
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore


def _selected_ids(run_dir: Path) -> list[list[str]]:
    store = RunStore(run_dir)
    return [[s.task.id for s in store.read_models(store.round(r).selected, SelectedSample)] for r in (1, 2)]


def _completed(run_dir: Path) -> list[tuple[int, str]]:
    return [
        (s.round or 0, s.name)
        for s in read_spans(run_dir / "traces.sqlite")
        if s.kind == "node" and s.status == "ok"
    ]


def test_kill_9_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, model_cache: Path, finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    env = cli_env(model_cache)
    marker = tmp_path / "landed.json"

    mid_training = KillPoint(run_dir=run_dir, marker=marker, node="train", round=1, at="step", n=2)
    landed = kill_at(mid_training, tiny_run_args(model_cache, run_dir), tmp_path, env)
    assert (landed.node, landed.round, landed.steps) == ("train", 1, 1)  # one step taken
    assert not RunStore(run_dir).round(1).model.exists()  # killed mid-training: no half model
    assert (1, "train") not in _completed(run_dir)

    published = KillPoint(run_dir=run_dir, marker=marker, node="train", round=2, at="end")
    landed = kill_at(published, ["resume", str(run_dir)], tmp_path, env)
    assert "rounds/2/model" in landed.written
    assert _completed(run_dir).count((2, "train")) == 1  # finished, but not checkpointed

    assert cli_in_process("resume", str(run_dir)) == 0  # in this process: no third start-up
    resumed = capsys.readouterr().err
    assert "round 1  train" not in resumed  # checkpointed nodes are not redone
    assert "round 2  train" in resumed  # the one that was not is

    for round_ in (1, 2):
        ours, reference = trained(run_dir, round_), trained(finished_run, round_)
        assert list(ours) == ["model"] and len(reference["model"][1]) == 3  # 24 rows, batches of 8
        assert ours == reference, f"round {round_} trained differently after the kills"

    ours = json.loads((run_dir / "summary.json").read_text())
    reference = json.loads((finished_run / "summary.json").read_text())
    assert ours["status"] == "complete"
    assert [r["round"] for r in ours["rounds"]] == [0, 1, 2]
    for a, b in zip(ours["rounds"], reference["rounds"], strict=True):
        assert a.get("samples") == b.get("samples")
        for split in ("dev", "test"):
            assert a[split]["skills"] == b[split]["skills"]
    assert _selected_ids(run_dir) == _selected_ids(finished_run)

    completed = _completed(run_dir)
    assert {e for e in completed if completed.count(e) > 1} == {(2, "train")}, "a finished node ran twice"
    assert_whole(run_dir)
