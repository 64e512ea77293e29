"""A full 2-round loop with the tiny model, through the real CLI: every artifact, the summary,
the splits kept apart from the training data, and the status view."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import cli_in_process, teachloop
from teachloop.environments.base import Task, normalize_question
from teachloop.environments.reasoning_gym import DEFAULT_SKILLS
from teachloop.environments.registry import load_environment
from teachloop.evals.metrics import wilson_interval
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore


def test_run_directory_holds_every_artifact(finished_run: Path) -> None:
    store = RunStore(finished_run)
    assert store.config_path.is_file() and store.state_db.is_file() and store.traces_db.is_file()
    assert store.rounds() == [0, 1, 2]
    for name in ("eval_dev.parquet", "eval_test.parquet", "metrics.json"):
        assert all((store.round(r).dir / name).is_file() for r in (0, 1, 2))
    for r in (1, 2):
        for name in ("plan.json", "generated.parquet", "scored.parquet", "selected.parquet", "sft.parquet"):
            assert (store.round(r).dir / name).is_file(), name
        assert (store.round(r).model / "model.safetensors").is_file()
    assert not list(finished_run.rglob(".tmp-*"))


def test_summary_reports_every_round(finished_run: Path) -> None:
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2]
    for r in summary["rounds"]:
        for split in ("dev", "test"):
            assert r[split]["n"] == 15
            assert set(r[split]["skills"]) == {s.skill_name for s in DEFAULT_SKILLS}
            low, high = r[split]["ci95"]
            assert low <= r[split]["accuracy"] <= high
        assert r["seconds"]["evaluate"] > 0
    for r in summary["rounds"][1:]:
        assert r["samples"]["selected"] == 24
        assert r["samples"]["generated"] >= 24
        assert r["seconds"]["train"] > 0


def test_summary_numbers_are_the_held_out_items_rescored(finished_run: Path) -> None:
    """Each round evaluated every item of each held-out split, unchanged; each stored reward is
    what the environment's own verifier gives the stored completion; and the summary's numbers
    are counted from those items (here by hand, not by the loop's metrics code)."""
    store = RunStore(finished_run)
    env = load_environment("reasoning-basics")
    summary = {r["round"]: r for r in json.loads((finished_run / "summary.json").read_text())["rounds"]}
    for split in ("dev", "test"):
        tasks = {
            row["id"]: Task(**row) for row in store.read_rows(finished_run / "splits" / f"{split}.parquet")
        }
        for round_ in (0, 1, 2):
            items = store.read_rows(store.round(round_).dir / f"eval_{split}.parquet")
            assert sorted(i["task_id"] for i in items) == sorted(tasks)
            for item in items:
                task = tasks[item["task_id"]]
                assert (item["question"], item["answer"], item["skill"]) == (
                    task.question,
                    task.answer,
                    task.skill,
                )
                assert env.score(task, item["completion"]).reward == item["reward"], item
            numbers = summary[round_][split]
            solved = sum(i["reward"] >= 1 for i in items)
            assert (numbers["n"], numbers["solved"]) == (len(items), solved)
            assert numbers["accuracy"] == solved / len(items)
            assert numbers["mean_reward"] == pytest.approx(sum(i["reward"] for i in items) / len(items))
            assert numbers["ci95"] == pytest.approx(list(wilson_interval(solved, len(items))))
            for skill, per in numbers["skills"].items():
                mine = [i for i in items if i["skill"] == skill]
                assert (per["n"], per["solved"]) == (len(mine), sum(i["reward"] >= 1 for i in mine))


def test_training_data_never_overlaps_dev_or_test(finished_run: Path) -> None:
    store = RunStore(finished_run)
    held_out = {
        normalize_question(row["question"])
        for split in ("dev", "test")
        for row in store.read_rows(finished_run / "splits" / f"{split}.parquet")
    }
    trained = [
        row["prompt"][-1]["content"]
        for r in (1, 2)
        for row in pq.read_table(store.round(r).rows("sft")).to_pylist()
    ]
    assert trained and not {normalize_question(q) for q in trained} & held_out
    assert len(set(trained)) == len(trained)


def test_traces_record_each_node_once(finished_run: Path) -> None:
    spans = read_spans(finished_run / "traces.sqlite")
    nodes = [(s.round, s.name) for s in spans if s.kind == "node"]
    assert len(nodes) == len(set(nodes))
    assert (1, "train") in nodes and (2, "evaluate") in nodes
    assert any(s.kind == "tool" and s.name == "trl.SFTTrainer" for s in spans)


def test_status_and_resume_of_a_finished_run(
    finished_run: Path, model_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A copy: about thirty other tests read the shared finished run, so this one must not write to it.
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    result = teachloop("status", str(run), "--json", cwd=tmp_path, model_cache=model_cache)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["status"] == "complete" and status["next"] == []
    before = (run / "summary.json").read_text()
    assert cli_in_process("resume", str(run)) == 0
    assert "train" not in capsys.readouterr().err  # nothing re-ran
    assert json.loads((run / "summary.json").read_text()) == json.loads(before)


def test_a_run_checkpointed_with_untyped_state_still_loads(
    finished_run: Path, model_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs written before the state was typed hold plain dicts in their checkpoint: status reads
    them, and resume rewrites them as models without re-running a node."""
    from langgraph.types import Overwrite

    from teachloop.loop.graph import compiled_graph
    from teachloop.loop.runner import THREAD
    from teachloop.loop.state import CHANNELS, untyped_channels

    run = tmp_path / "old"
    shutil.copytree(finished_run, run)
    with compiled_graph(run / "state.sqlite") as graph:
        values = graph.get_state(THREAD).values
        old = {
            c: Overwrite([m.model_dump(mode="json") for m in values[c]]) for c in CHANNELS if values.get(c)
        }
        graph.update_state(THREAD, old, as_node="evaluate")
        assert set(untyped_channels(graph.get_state(THREAD).values)) == set(old)
    before = json.loads((run / "summary.json").read_text())

    status = teachloop("status", str(run), "--json", cwd=tmp_path, model_cache=model_cache)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["rounds"] == before["rounds"]
    assert cli_in_process("resume", str(run)) == 0
    assert "train" not in capsys.readouterr().err
    assert json.loads((run / "summary.json").read_text())["rounds"] == before["rounds"]
    with compiled_graph(run / "state.sqlite") as graph:
        assert untyped_channels(graph.get_state(THREAD).values) == []
