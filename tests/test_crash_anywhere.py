"""Crash anywhere: SIGKILL a 2-round run once inside every node type, resume after each kill, and
check the finished run equals an uninterrupted one bit for bit — the same weights reached through
the same per-step losses, the same samples, rollouts and preference pairs, the same teacher's
diagnoses and plans — with no half-written artifact and no finished node run again.

The run is the one with the most state to lose: the diagnoser and the planner are LLM brains
against a loopback OpenAI-compatible server (tests/fake_openai.py answering as
tests/teacher_script.py), and round 2 moves every skill to DPO (``train.trainer=auto`` with a
stall threshold of 100%), so round 2 samples rollouts and trains on pairs from them.

Kills are aimed at moments the process halts at itself (tests/killpoint.py), chosen from what an
observed uninterrupted run did: a node's start, between two of its file writes, between two
training steps, or after it returned but before its checkpoint. So every kill provably lands
inside its node, and a resume must run again exactly the nodes killed after they returned."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from killpoint import Execution, KillPoint, kill_at, observed_run
from teacher_script import ScriptedTeacher

from helpers import assert_whole, cli_env, cli_in_process, tiny_run_args, trained
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore

NODE_TYPES = {
    "setup",
    "evaluate",
    "guard",
    "diagnose",
    "frontier",
    "plan",
    "generate",
    "revise",
    "score",
    "select",
    "rollout",
    "train",
}


@pytest.fixture(scope="module")
def teacher() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(ScriptedTeacher()) as server:
        yield server


def _args(model_cache: Path, run_dir: Path, teacher: FakeOpenAI) -> list[str]:
    return [
        *tiny_run_args(model_cache, run_dir),
        *("--samples-per-round", "8", "--set", "train.batch_size=4", "--set", "train.dpo.samples=2"),
        *("--set", "eval.max_new_tokens=4"),
        *("--trainer", "auto", "--set", "train.stall_threshold=1.0"),
        *("--teacher-base-url", teacher.base_url, "--teacher-model", "scripted"),
        *("--set", "teacher.brains.diagnoser=openai", "--set", "teacher.brains.planner=openai"),
    ]


KEY = "sk-loopback-test"


def _env(model_cache: Path) -> dict[str, str]:
    return {**cli_env(model_cache), "OPENAI_API_KEY": KEY}


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, tiny_student: Path, teacher: FakeOpenAI
) -> tuple[Path, list[Execution]]:
    """The uninterrupted run, and what each of its node executions did."""
    tmp = tmp_path_factory.mktemp("reference")
    run_dir = tmp / "run"
    return run_dir, observed_run(_args(model_cache, run_dir, teacher), run_dir, tmp, _env(model_cache))


def _completed(run_dir: Path) -> list[tuple[int, str]]:
    spans = read_spans(run_dir / "traces.sqlite") if run_dir.exists() else []
    return [(s.round or 0, s.name) for s in spans if s.kind == "node" and s.status == "ok"]


def _kill_points(executions: list[Execution], run_dir: Path, marker: Path) -> list[KillPoint]:
    """One kill in the first execution of every node type, at a random moment it really has;
    training is killed mid-way (between two steps) in round 2, whose DPO trains on the rollouts
    (test_resume kills SFT mid-way)."""
    rng = random.Random(12)
    points, covered = [], set()
    for e in executions:
        if e.node in covered or (e.node, e.round) == ("train", 1):
            continue
        covered.add(e.node)
        moments = (
            [("step", n) for n in range(2, e.steps + 1)]  # some steps taken, some not
            if e.steps > 1
            else [("start", 1), *(("write", n) for n in range(1, len(e.written) + 1)), ("end", 1)]
        )
        at, n = rng.choice(moments)
        points.append(KillPoint(run_dir=run_dir, marker=marker, node=e.node, round=e.round, at=at, n=n))
    return points


def _table(run_dir: Path, name: str) -> list[list[dict[str, object]]]:
    """The rows of ``name`` in each round that wrote it."""
    store = RunStore(run_dir)
    paths = [store.round(r).dir / name for r in (1, 2)]
    return [store.read_rows(p) for p in paths if p.exists()]


@pytest.mark.slow
def test_sigkill_inside_every_node_then_resume_equals_uninterrupted(
    tmp_path: Path,
    model_cache: Path,
    reference: tuple[Path, list[Execution]],
    teacher: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref_dir, executions = reference
    assert {e.node for e in executions} == NODE_TYPES
    run_dir = tmp_path / "run"
    points = _kill_points(executions, run_dir, tmp_path / "landed.json")
    assert {p.at for p in points} == {"start", "write", "step", "end"}, points
    args = _args(model_cache, run_dir, teacher)
    for point in points:
        where = (point.round, point.node)
        before = _completed(run_dir).count(where)
        landed = kill_at(point, args, tmp_path, _env(model_cache))
        assert (landed.round, landed.node, landed.at, landed.n) == (*where, point.at, point.n)
        finished = _completed(run_dir).count(where) - before
        # the node was unfinished when killed, except at "end" (returned, not yet checkpointed)
        assert finished == (point.at == "end"), point
        args = ["resume", str(run_dir)]
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert cli_in_process("resume", str(run_dir)) == 0  # the last resume in this process

    ours = json.loads((run_dir / "summary.json").read_text())
    ref = json.loads((ref_dir / "summary.json").read_text())
    assert ours["status"] == "complete"
    assert [r["round"] for r in ours["rounds"]] == [0, 1, 2]
    for a, b in zip(ours["rounds"], ref["rounds"], strict=True):
        assert a.get("samples") == b.get("samples")
        for split in ("dev", "test"):
            assert a[split]["skills"] == b[split]["skills"]
    for round_ in (1, 2):
        assert trained(run_dir, round_) == trained(ref_dir, round_), f"round {round_} trained differently"
    for name in ("selected.parquet", "sft.parquet", "rollouts.parquet", "dpo.parquet"):
        assert _table(run_dir, name) == _table(ref_dir, name), name
    assert _table(ref_dir, "dpo.parquet")[0], "round 2 made no preference pairs"
    for round_ in (0, 1, 2):
        for name in ("weakness.json", "plan.json"):
            path = Path("rounds") / str(round_) / name
            if (ref_dir / path).exists():
                assert (run_dir / path).read_text() == (ref_dir / path).read_text(), path
    assert set(teacher.counts) == {"requests", "ok"}

    completed = _completed(run_dir)
    assert sorted(set(completed)) == sorted((e.round, e.node) for e in executions)
    twice = {e for e in completed if completed.count(e) > 1}
    assert twice == {(p.round, p.node) for p in points if p.at == "end"}, "a finished node ran twice"
    assert_whole(run_dir)
