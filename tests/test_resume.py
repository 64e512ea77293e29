"""Kill the loop for real (SIGKILL) in the middle of nodes, resume, and check the run ends up
exactly as an uninterrupted one: same rounds, same samples, no node finished twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import cli_env, node_seconds, teachloop, tiny_run_args
from teachloop.agents.selector import SelectedSample
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore


def _run_until(args: list[str], cwd: Path, model_cache: Path, marker: str, delay: float) -> None:
    """Start ``teachloop``, wait until stderr shows ``marker``, then SIGKILL it after ``delay`` s."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "teachloop", *args],
        cwd=cwd,
        env=cli_env(model_cache),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)


def _selected_ids(run_dir: Path) -> list[list[str]]:
    store = RunStore(run_dir)
    return [[s.task.id for s in store.read_models(store.round(r).selected, SelectedSample)] for r in (1, 2)]


def test_kill_9_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, model_cache: Path, finished_run: Path
) -> None:
    run_dir = tmp_path / "run"
    # A quarter of the reference run's train node: well before the model is saved, even when the
    # reference ran on a busier CPU than this run (a kill at half of it came too late once).
    early = node_seconds(finished_run, 1, "train") / 4
    _run_until(tiny_run_args(model_cache, run_dir), tmp_path, model_cache, "round 1  train     …", early)
    assert not (RunStore(run_dir).round(1).model).exists()  # killed mid-training: no half model
    _run_until(["resume", str(run_dir)], tmp_path, model_cache, "round 2  score     …", delay=0.0)
    result = teachloop("resume", str(run_dir), cwd=tmp_path, model_cache=model_cache)
    assert result.returncode == 0, result.stderr
    assert "round 1  train" not in result.stderr  # finished nodes are not redone

    ours = json.loads((run_dir / "summary.json").read_text())
    reference = json.loads((finished_run / "summary.json").read_text())
    assert ours["status"] == "complete"
    assert [r["round"] for r in ours["rounds"]] == [0, 1, 2]
    for a, b in zip(ours["rounds"], reference["rounds"], strict=True):
        assert a.get("samples") == b.get("samples")
        for split in ("dev", "test"):
            assert a[split]["skills"] == b[split]["skills"]
    assert _selected_ids(run_dir) == _selected_ids(finished_run)

    completed = [
        (s.round, s.name)
        for s in read_spans(run_dir / "traces.sqlite")
        if s.kind == "node" and s.status == "ok"
    ]
    assert len(completed) == len(set(completed)), "a finished node ran twice"
    assert not list(run_dir.rglob(".tmp-*"))
