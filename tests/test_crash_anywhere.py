"""Crash anywhere: SIGKILL a 2-round tiny run at a dozen random moments spread over every node
type, resume after each kill, and check the finished run equals an uninterrupted one — same
rounds, same sample counts and ids, no node finished twice — with no half-written artifact."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import assert_whole, cli_env, node_seconds, teachloop, tiny_run_args
from teachloop.agents.selector import SelectedSample
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore

PIPELINE = [
    "diagnose",
    "frontier",
    "plan",
    "generate",
    "revise",
    "score",
    "select",
    "train",
    "evaluate",
    "guard",
]
#: Every node execution of a 2-round run, in order, as it appears in the progress output.
EXECUTIONS = [(0, "setup"), (0, "evaluate")] + [
    (r if node in ("diagnose",) else r + 1, node) for r in (0, 1) for node in PIPELINE
]
KILLS = 12
SLOW_NODES = {"setup", "evaluate", "train"}


def _completed(run_dir: Path) -> list[tuple[int, str]]:
    spans = read_spans(run_dir / "traces.sqlite") if run_dir.exists() else []
    return [(s.round or 0, s.name) for s in spans if s.kind == "node" and s.status == "ok"]


def _next_target(run_dir: Path, covered: set[str], rng: random.Random) -> tuple[int, str] | None:
    """A node execution still to come: the first of a node type not killed yet, else a random near one."""
    done = set(_completed(run_dir))
    remaining = [e for e in EXECUTIONS if e not in done]
    if not remaining:
        return None
    fresh = [e for e in remaining if e[1] not in covered]
    return fresh[0] if fresh else rng.choice(remaining[:4])


def _marker(execution: tuple[int, str]) -> str:
    round_, node = execution
    return f"round {round_}  {node:<9} …"


def _start_and_kill(args: list[str], cwd: Path, model_cache: Path, marker: str, delay: float) -> bool:
    """Run ``teachloop args``; SIGKILL it ``delay`` s after ``marker`` shows. False if it finished first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "teachloop", *args],
        cwd=cwd,
        env=cli_env(model_cache),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if marker in line:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    return proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(
    tmp_path: Path, model_cache: Path, finished_run: Path
) -> None:
    run_dir = tmp_path / "run"
    rng = random.Random(20261122)
    args = tiny_run_args(model_cache, run_dir)
    killed: list[tuple[int, str]] = []
    while len(killed) < KILLS and (target := _next_target(run_dir, {n for _, n in killed}, rng)):
        # slow nodes die somewhere inside (scaled to their reference duration, so the kill does not
        # overshoot into later nodes on a fast machine); fast ones (milliseconds) right as they start
        delay = (
            rng.uniform(0.05, 0.9) * node_seconds(finished_run, *target) if target[1] in SLOW_NODES else 0.0
        )
        if _start_and_kill(args, tmp_path, model_cache, _marker(target), delay):
            killed.append(target)
        args = ["resume", str(run_dir)]
    assert len(killed) >= 10, f"only {len(killed)} kills landed before the run finished"
    assert {n for _, n in killed} == {n for _, n in EXECUTIONS}, killed
    final = teachloop("resume", str(run_dir), cwd=tmp_path, model_cache=model_cache)
    assert final.returncode == 0, final.stderr

    ours = json.loads((run_dir / "summary.json").read_text())
    reference = json.loads((finished_run / "summary.json").read_text())
    assert ours["status"] == "complete"
    assert [r["round"] for r in ours["rounds"]] == [r["round"] for r in reference["rounds"]]
    for a, b in zip(ours["rounds"], reference["rounds"], strict=True):
        assert a.get("samples") == b.get("samples")
    store, ref = RunStore(run_dir), RunStore(finished_run)
    for r in (1, 2):
        ids = [s.task.id for s in store.read_models(store.round(r).selected, SelectedSample)]
        assert len(ids) == len(set(ids)), "duplicated samples"
        ref_ids = [s.task.id for s in ref.read_models(ref.round(r).selected, SelectedSample)]
        assert ids == ref_ids, "lost or changed samples"
    completed = [
        (s.round, s.name)
        for s in read_spans(run_dir / "traces.sqlite")
        if s.kind == "node" and s.status == "ok"
    ]
    # A kill aimed at a millisecond node can land after its span closed and before its checkpoint
    # was written; resume then runs it again, which is safe because nodes rewrite the same files.
    # Any other node finishing twice is a resume that redid work it had saved.
    twice = {e for e in completed if completed.count(e) > 1}
    assert twice <= {e for e in killed if e[1] not in SLOW_NODES}, f"a finished node ran twice: {twice}"
    assert set(completed) == set(EXECUTIONS)
    assert_whole(run_dir)
