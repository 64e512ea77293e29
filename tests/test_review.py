"""Review gates: a real run paused by LangGraph's interrupt() at its plan and its data, killed
(SIGKILL) between the gates and resumed, with a person's decisions honoured: an edited plan
(budget, skills, level), a rejected sample absent from training, an edited answer trained on;
decisions recorded in the round, the trace, the report and ``inspect``; bad decisions one line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import TINY_ARGS, cli_env, cli_in_process, teachloop
from teachloop.agents.planner import Allocation, Plan
from teachloop.agents.review import PlanEdit, ReviewDecision, edited_plan, reviewed_selection
from teachloop.agents.reviser_training import reviser_rows, revision_records
from teachloop.agents.selector import SelectedSample
from teachloop.criteria.pairs import load_pairs
from teachloop.environments.base import Task
from teachloop.foundation.errors import ConfigError
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore


def _plan() -> Plan:
    allocations = [
        Allocation(skill="aiw", n=6, difficulty=0, reason="r"),
        Allocation(skill="chain_sum", n=3, difficulty=1, reason="r"),
        Allocation(skill="number_sequence", n=3, difficulty=0, reason="r"),
    ]
    return Plan(round=1, policy="deficit", budget=12, allocations=allocations)


def _decision(**kw: Any) -> ReviewDecision:
    return ReviewDecision(gate=kw.pop("gate", "data"), round=1, reviewer="ana", decided_at="t", **kw)


def test_an_edited_plan_keeps_its_shares_within_the_new_budget_and_levels() -> None:
    levels = {"aiw": (0, 2), "chain_sum": (0, 3), "number_sequence": (0, 1)}
    plan = edited_plan(_plan(), PlanEdit(budget=10, skills=["aiw", "chain_sum"], levels={"aiw": 2}), levels)
    assert [(a.skill, a.n, a.difficulty) for a in plan.allocations] == [("aiw", 7, 2), ("chain_sum", 3, 1)]
    assert plan.budget == plan.total == 10
    with pytest.raises(ConfigError, match="'ifeval' is not in round 1's plan"):
        edited_plan(_plan(), PlanEdit(skills=["ifeval"]), levels)
    with pytest.raises(ConfigError, match=r"outside its range 0\.\.1"):
        edited_plan(_plan(), PlanEdit(levels={"number_sequence": 2}), levels)


def test_a_data_review_removes_rejected_and_replaces_edited_answers() -> None:
    tasks = [Task(skill="chain_sum", question=f"{i} + 1 =", answer=str(i + 1)) for i in range(3)]
    selected = [SelectedSample(task=t, origin="new") for t in tasks]
    kept, record = reviewed_selection(
        _decision(reject=[tasks[0].id], edits=[{"task_id": tasks[1].id, "answer": "9"}]), selected
    )
    assert [s.task.id for s in kept] == [tasks[1].id, tasks[2].id]
    assert (kept[0].task.answer, kept[0].task.original_answer) == ("9", "2")
    assert [t.id for t in record.rejected] == [tasks[0].id]
    assert record.outcome(tasks[0].id) == "rejected" and record.outcome(tasks[1].id) == "edited"
    assert record.outcome(tasks[2].id) == "approved"
    with pytest.raises(ConfigError, match="no selected sample 'nope'"):
        reviewed_selection(_decision(reject=["nope"]), selected)
    with pytest.raises(ConfigError, match="both rejected and edited"):
        reviewed_selection(
            _decision(reject=[tasks[0].id], edits=[{"task_id": tasks[0].id, "answer": "1"}]), selected
        )


def _one_line_error(capsys: Any, *args: str) -> str:
    assert cli_in_process(*args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return str(err)


def _resume_killed_at(run_dir: Path, cwd: Path, model_cache: Path, marker: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "teachloop", "resume", str(run_dir)],
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
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)


@pytest.mark.slow
def test_paused_run_killed_and_resumed_with_decisions(
    tmp_path: Path, model_cache: Path, tiny_student: Path, capsys: Any
) -> None:
    run_dir = tmp_path / "run"
    store = RunStore(run_dir)
    args = [*TINY_ARGS, "--rounds", "1", "--run-dir", str(run_dir), "--set", f"model_cache={model_cache}"]
    code = cli_in_process("run", *args, "--review", "plan,data")  # in this process: no second start-up
    started = capsys.readouterr()
    assert code == 0, started.err
    assert "paused: round 1's plan waits for 'teachloop review" in started.out
    assert "round 1  generate" not in started.err  # nothing after the gate ran
    assert json.loads(store.summary_path.read_text())["waiting_for_review"] == {"gate": "plan", "round": 1}

    assert "round 1's plan waits for a decision" in _one_line_error(capsys, "resume", str(run_dir))
    assert "not in round 1's plan" in _one_line_error(capsys, "review", str(run_dir), "--skills", "nope")
    assert "at the data review" in _one_line_error(capsys, "review", str(run_dir), "--reject", "x")
    assert cli_in_process("review", str(run_dir)) == 0 and "waits for review" in capsys.readouterr().out
    decided = ("review", str(run_dir), "--budget", "10", "--skills", "aiw,chain_sum", "--level", "aiw=2")
    assert cli_in_process(*decided, "--reviewer", "ana") == 0
    capsys.readouterr()

    # killed between the gates: the plan decision was applied once and is not asked for again
    _resume_killed_at(run_dir, tmp_path, model_cache, "round 1  score")
    paused = teachloop("resume", str(run_dir), cwd=tmp_path, model_cache=model_cache)
    assert paused.returncode == 0, paused.stderr
    assert "paused: round 1's data waits" in paused.stdout and "review_plan" not in paused.stderr
    plan = store.read_json(store.round(1).plan, Plan)
    assert [(a.skill, a.n, a.difficulty) for a in plan.allocations] == [("aiw", 5, 2), ("chain_sum", 5, 1)]
    waiting = store.read_models(store.round(1).selected, SelectedSample)
    assert len(waiting) == 10 and {s.task.skill for s in waiting} == {"aiw", "chain_sum"}
    assert all(s.task.difficulty == 2 for s in waiting if s.task.skill == "aiw")

    assert "no selected sample 'nope'" in _one_line_error(capsys, "review", str(run_dir), "--reject", "nope")
    rejected, edited = waiting[0].task, waiting[1].task
    new_answer = edited.answer + "0"
    assert (
        cli_in_process("review", str(run_dir), "--reject", rejected.id, "--edit", f"{edited.id}={new_answer}")
        == 0
    )
    capsys.readouterr()
    code = cli_in_process("resume", str(run_dir))
    finished = capsys.readouterr()
    assert code == 0, finished.err
    assert json.loads(store.summary_path.read_text())["status"] == "complete"

    trained = store.read_rows(store.round(1).rows("sft"))
    assert len(trained) == 9 and rejected.id not in {r["task_id"] for r in trained}
    assert [r["completion"][0]["content"] for r in trained if r["task_id"] == edited.id] == [new_answer]
    assert json.loads(store.summary_path.read_text())["rounds"][1]["samples"]["selected"] == 9
    record = json.loads(store.round(1).review("data").read_text())
    assert record["applied"] and record["decision"]["reviewer"] and record["decision"]["decided_at"]
    assert json.loads(store.round(1).review("plan").read_text())["decision"]["reviewer"] == "ana"
    reviewers = [s for s in read_spans(store.traces_db) if s.name == "reviewer" and s.status == "ok"]
    assert [s.decoded("inputs")["gate"] for s in reviewers] == ["plan", "data"]

    # what the person changed is training data for CritiQ (--pairs) and the reviser
    pairs = load_pairs(store.round(1).review_rows("pairs"))
    assert {
        (p.chosen.answer, p.rejected.answer) for p in pairs if p.rejected.question == edited.question
    } == {(new_answer, edited.answer)}
    assert any(p.rejected.question == rejected.question for p in pairs)
    rows = reviser_rows(revision_records([run_dir]))
    assert [json.loads(r["completion"][0]["content"])["answer"] for r in rows] == [new_answer]

    assert "not paused for review" in _one_line_error(capsys, "review", str(run_dir), "--approve")
    assert cli_in_process("inspect", str(run_dir), "samples", "--review", "rejected", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["task_id"] for s in shown["samples"]] == [rejected.id]
    assert (
        cli_in_process(
            "inspect", str(run_dir), "samples", "--origin", "engine", "--kept", "--json", "--limit", "0"
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["matched"] == 9
    exported = tmp_path / "export"
    assert cli_in_process("export", str(run_dir), "--out", str(exported)) == 0
    rows = [json.loads(line) for line in (exported / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and rejected.id not in {r["task_id"] for r in rows}
    assert [(r["review"], r["messages"][-1]["content"]) for r in rows if r["task_id"] == edited.id] == [
        ("edited", new_answer)
    ]
    assert {r["review"] for r in rows if r["task_id"] != edited.id} == {"approved"}
    assert len(load_pairs(exported / "review_pairs.jsonl")) == len(pairs)
    capsys.readouterr()
    assert cli_in_process("report", str(run_dir)) == 0
    page = (run_dir / "report.html").read_text()
    assert (
        page.count('<tr class="review">') == 2
        and "1 rejected" in page
        and f"{edited.id} → {new_answer}" in page
    )
