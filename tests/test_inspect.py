"""``teachloop inspect`` on a real tiny-model run: every view, its filters and its JSON, and the
spans the run left behind."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from helpers import teachloop
from teachloop.cli.app import app
from teachloop.reports.textdiff import word_diff
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore

SKILLS = {"aiw", "chain_sum", "family_relationships", "number_sequence", "word_sequence_reversal"}


def inspect(run_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["inspect", str(run_dir), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def inspect_json(run_dir: Path, *args: str) -> Any:
    return json.loads(inspect(run_dir, *args, "--json"))


def copy_run(finished_run: Path, dest: Path) -> Path:
    """A copy of the run without its model weights, to plant data in."""
    shutil.copytree(finished_run, dest, ignore=shutil.ignore_patterns("model", ".lock"))
    return dest


def test_rounds_view_shows_per_skill_metrics_with_counts_and_intervals(finished_run: Path) -> None:
    text = inspect(finished_run)  # the default view
    assert "dev accuracy by round" in text and "test accuracy by round" in text
    assert "chain_sum" in text and "[0%-56%]" in text and "0/3" in text
    assert text == inspect(finished_run, "rounds")
    data = inspect_json(finished_run, "rounds")
    assert data == inspect_json(finished_run)
    assert [r["round"] for r in data["rounds"]] == [0, 1, 2]
    summary = json.loads((finished_run / "summary.json").read_text())
    for got, expected in zip(data["rounds"], summary["rounds"], strict=True):
        for split in ("dev", "test"):
            skills = got[split]["skills"]
            assert set(skills) == SKILLS
            for name, m in skills.items():
                assert m["n"] == expected[split]["skills"][name]["n"] == 3
                assert [m["ci_low"], m["ci_high"]] == expected[split]["skills"][name]["ci95"]
        assert got["samples"] == expected.get("samples", {})
    assert data["rounds"][1]["train"]["train_loss"] > 0


def test_plan_view_pairs_a_round_plan_with_the_diagnosis_it_came_from(finished_run: Path) -> None:
    data = inspect_json(finished_run, "plan", "--round", "1")
    assert data["round"] == 1 and data["weakness"]["round"] == 0 and data["plan"]["round"] == 1
    assert data["plan_total"] == 24 and {a["skill"] for a in data["plan"]["allocations"]} == SKILLS
    assert inspect_json(finished_run, "plan")["round"] == 2  # the latest plan by default
    text = inspect(finished_run, "plan", "-r", "1")
    assert "weakness report after round 0" in text and "plan for round 1" in text and "deficit" in text


def test_samples_view_filters(finished_run: Path) -> None:
    everything = inspect_json(finished_run, "samples", "--limit", "0")
    summary = json.loads((finished_run / "summary.json").read_text())
    counts = [r["samples"] for r in summary["rounds"] if "samples" in r]
    assert everything["total"] == everything["matched"] == sum(c["generated"] + c["replayed"] for c in counts)
    samples = everything["samples"]
    assert {s["round"] for s in samples} == {1, 2} and {s["skill"] for s in samples} == SKILLS
    assert not any(s["revised"] for s in samples)

    kept = inspect_json(finished_run, "samples", "--kept", "--limit", "0")
    assert kept["matched"] == sum(c["selected"] for c in counts)
    assert all(s["kept"] and s["origin"] in ("new", "replay") for s in kept["samples"])
    dropped = inspect_json(finished_run, "samples", "--dropped", "--limit", "0")
    assert kept["matched"] + dropped["matched"] == everything["total"]

    one = inspect_json(
        finished_run, "samples", "-r", "1", "-s", "chain_sum", "--min-score", "1", "--limit", "0"
    )
    assert one["matched"] > 0
    assert all(s["round"] == 1 and s["skill"] == "chain_sum" and s["score"] >= 1 for s in one["samples"])
    assert inspect_json(finished_run, "samples", "--revised")["matched"] == 0
    assert inspect_json(finished_run, "samples", "--limit", "3")["samples"][2]["task_id"]
    assert len(inspect_json(finished_run, "samples", "--limit", "3")["samples"]) == 3

    text = inspect(finished_run, "samples", "--skill", "aiw", "--limit", "2")
    assert "aiw" in text and "chain_sum" not in text and "more; use --limit 0" in text


def test_samples_view_shows_a_revision_as_a_diff(finished_run: Path, tmp_path: Path) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    store = RunStore(run)
    path = store.round(1).scored
    rows = store.read_rows(path)
    original = rows[0]["task"]["question"]
    revised = original.replace("has", "now has", 1) + " Think step by step."
    rows[0]["task"] = {**rows[0]["task"], "question": revised, "answer": rows[0]["task"]["answer"]}
    rows[0]["original_question"] = original
    rows[0]["judge_score"] = 0.75
    for row in rows[1:]:
        row["original_question"] = None
        row["judge_score"] = None
    store.write_rows(path, rows, encode_json=True)

    data = inspect_json(run, "samples", "--revised")
    assert data["matched"] == 1
    (sample,) = data["samples"]
    assert sample["original_question"] == original and sample["question"] == revised
    assert sample["extra_scores"] == {"judge_score": 0.75}
    ops = Counter(p["op"] for p in sample["diff"]["question"])
    assert ops["insert"] >= 1 and ops["equal"] >= 1
    assert "".join(p["text"] for p in sample["diff"]["question"] if p["op"] != "insert") == original
    assert "".join(p["text"] for p in sample["diff"]["question"] if p["op"] != "delete") == revised
    assert all(p["op"] == "equal" for p in sample["diff"]["answer"])
    assert inspect_json(run, "samples", "--unrevised")["matched"] == data["total"] - 1

    text = inspect(run, "samples", "--revised")
    assert "revised samples (1)" in text and "Think step by step." in text


def test_word_diff_marks_changed_words_and_keeps_both_sides() -> None:
    before, after = "What is 2 + 2?  Answer briefly.", "What is 2 + 3? Answer briefly, please."
    pieces = word_diff(before, after)
    assert "".join(p.text for p in pieces if p.op != "insert") == before
    assert "".join(p.text for p in pieces if p.op != "delete") == after
    assert [p.text for p in pieces if p.op == "delete"] == ["2?  ", "briefly."]
    assert [p.text for p in pieces if p.op == "insert"] == ["3? ", "briefly, please."]
    assert [p.op for p in word_diff("same text", "same text")] == ["equal"]


def test_trace_view_shows_the_tree_with_timings_and_tokens(finished_run: Path) -> None:
    data = inspect_json(finished_run, "trace")
    (root,) = data["spans"]
    assert (root["kind"], root["name"]) == ("run", "loop")
    assert root["outputs"]["stop_reason"] == "completed 2 round(s)"
    nodes = [(c["round"], c["name"]) for c in root["children"]]
    assert nodes[:3] == [(0, "setup"), (0, "evaluate"), (0, "diagnose")]
    assert nodes[-2:] == [(2, "evaluate"), (2, "guard")]
    assert all(c["seconds"] >= 0 and c["offset_seconds"] >= 0 for c in root["children"])

    round1 = inspect_json(finished_run, "trace", "--round", "1")["spans"]
    assert [n["name"] for n in round1] == [
        "frontier",
        "plan",
        "generate",
        "revise",
        "score",
        "select",
        "train",
        "evaluate",
        "guard",
        "diagnose",
    ]
    text = inspect(finished_run, "trace", "-r", "1")
    assert "trl.SFTTrainer" in text and "tokens" in text and "0 errors" in text


def test_every_node_agent_and_tool_call_is_a_span(finished_run: Path) -> None:
    spans = read_spans(finished_run / "traces.sqlite")
    by_id = {s.id: s for s in spans}

    def children(round_: int, node: str) -> list[str]:
        (parent,) = [s for s in spans if s.kind == "node" and s.name == node and s.round == round_]
        return [s.name for s in spans if s.parent_id == parent.id]

    assert all(s.status == "ok" for s in spans)
    assert all(s.parent_id is None or s.parent_id in by_id for s in spans)
    assert children(0, "setup") == ["reasoning-basics.tasks"] * 2
    for k in (0, 1, 2):
        assert children(k, "evaluate") == ["student.load", "student.generate", "reasoning-basics.score"]
    for k in (0, 1):  # the loop stops after round 2's evaluation: no diagnosis follows it
        assert children(k, "diagnose") == ["diagnoser.heuristic"]
    for k in (1, 2):
        assert children(k, "plan") == ["planner.deficit"]
        assert children(k, "generate") == ["engine.heuristic"]
        assert children(k, "revise") == ["reviser.heuristic"]
        assert children(k, "score") == ["reasoning-basics.verify"]
        assert children(k, "select") == ["selector"]
        assert children(k, "train") == ["trl.SFTTrainer"]
        (engine,) = [s for s in spans if s.name == "engine.heuristic" and s.round == k]
        calls = [s for s in spans if s.parent_id == engine.id]
        assert {c.decoded("inputs")["skill"] for c in calls} == SKILLS
        assert all(c.name == "reasoning-basics.generate" and c.round == k for c in calls)
    generations = [s for s in spans if s.name == "student.generate"]
    assert all((s.prompt_tokens or 0) > 0 and (s.completion_tokens or 0) > 0 for s in generations)
    (trainer,) = [s for s in spans if s.name == "trl.SFTTrainer" and s.round == 1]
    assert trainer.decoded("inputs")["rows"] == 24 and trainer.decoded("outputs")["train_loss"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--round", "0"], "round 0 has no plan; rounds with a plan: 1, 2"),
        (["samples", "--round", "9"], "has no round 9"),
        (["samples", "--origin", "old"], "--origin must be new or replay"),
        (["trace", "--round", "9"], "no spans for round 9"),
    ],
)
def test_bad_requests_print_one_line_and_exit_2(
    finished_run: Path, model_cache: Path, args: list[str], message: str
) -> None:
    result = teachloop("inspect", str(finished_run), *args, cwd=finished_run.parent, model_cache=model_cache)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_inspecting_a_directory_that_is_not_a_run_fails_cleanly(tmp_path: Path, model_cache: Path) -> None:
    result = teachloop("inspect", str(tmp_path), cwd=tmp_path, model_cache=model_cache)
    assert result.returncode == 2 and "not a teachloop run directory" in result.stderr
