"""The curriculum and the forgetting guard in real loop runs (tiny random model, real TRL, the CLI).

Both use the ``hush`` test plug-in (tests/plugins): the tiny model answers every prompt with line
breaks only, so it starts at 100% on ``hush`` (reply with nothing) and at 0% on ``echo`` at every
level. A planted bad update (a learning rate of 3 in float32, which makes the model say words) destroys
``hush``: the guard must roll the round back. With the default learning rate nothing changes, so
``echo`` stalls at its evaluation level and the curriculum must step it down after probing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import cli_in_process, teachloop
from teachloop.agents.curriculum import Curriculum, ProbeResult
from teachloop.agents.guard import GuardDecision
from teachloop.agents.planner import Plan
from teachloop.agents.selector import SelectedSample
from teachloop.environments.base import normalize_question
from teachloop.reports.report import render_report
from teachloop.reports.rundata import RunData
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore

pytestmark = pytest.mark.usefixtures("test_plugins")


def _hush_run(model_cache: Path, run_dir: Path, *args: str) -> int:
    """A 2-round loop on ``hush`` through the CLI's ``main`` in this process."""
    return cli_in_process(
        "run",
        "--env",
        "hush",
        "--student",
        "tiny-random-llama",
        "--samples-per-round",
        "24",
        "--rounds",
        "2",
        "--run-dir",
        str(run_dir),
        "--set",
        f"model_cache={model_cache}",
        "--set",
        "eval.dev_per_skill=12",  # enough items for the guard's test to see a collapse
        "--set",
        "eval.test_per_skill=4",
        "--set",
        "train.batch_size=8",
        *args,
    )


def test_the_guard_rolls_back_a_round_that_destroyed_a_skill(
    tmp_path: Path, model_cache: Path, tiny_student: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    # float32 everywhere: in bf16 (CPUs with native bf16) a learning rate of 3 can leave the tiny
    # model saying nothing, which hush rewards, so the planted update would not be bad there
    assert _hush_run(model_cache, run_dir, "--set", "train.learning_rate=3", "--set", "train.bf16=false") == 0
    shown = capsys.readouterr().out
    assert "rolled back to round 0's model: the run ends with it" in " ".join(shown.split())
    store = RunStore(run_dir)
    first = store.read_json(store.round(1).guard, GuardDecision)
    assert first.action == "rolled_back" and not first.accepted and first.dropped == ["hush"]
    hush = next(c for c in first.checks if c.skill == "hush")
    assert (hush.before, hush.after, hush.lost, hush.gained) == (1.0, 0.0, 12, 0)
    assert first.baseline_round == 0 and first.student == str(tiny_student)
    # round 2 trains from the model round 1 went back to, and replays earlier data (the repair)
    job = json.loads(store.round(2).train_job.read_text())
    assert job["student"] == str(tiny_student)
    origins = [s.origin for s in store.read_models(store.round(2).selected, SelectedSample)]
    assert origins.count("replay") == 6  # teacher.guard.replay_fraction 0.25 of 24
    second = store.read_json(store.round(2).guard, GuardDecision)
    assert second.action == "rolled_back" and second.baseline_round == 0
    # the next diagnosis reads the kept model's dev results, not the destroyed one's
    weakness = json.loads(store.round(1).weakness.read_text())
    assert {s["skill"]: s["accuracy"] for s in weakness["skills"]} == {"hush": 1.0, "echo": 0.0}

    summary = json.loads(store.summary_path.read_text())
    assert summary["student_round"] == 0
    assert [r.get("guard", {}).get("action") for r in summary["rounds"]] == [
        None,
        "rolled_back",
        "rolled_back",
    ]
    assert summary["rounds"][1]["guard"]["dropped"] == ["hush"]
    spans = [s for s in read_spans(store.traces_db) if s.kind == "agent" and s.name == "guard"]
    assert [(s.round, s.decoded("outputs")["action"]) for s in spans] == [
        (1, "rolled_back"),
        (2, "rolled_back"),
    ]
    page = render_report(RunData(run_dir))
    assert "Forgetting guard" in page and "rolled back" in page and "12 lost, 0 gained" in page

    assert cli_in_process("resume", str(run_dir)) == 0
    assert "guard" not in capsys.readouterr().err and json.loads(store.summary_path.read_text()) == summary


def test_the_curriculum_steps_a_stalled_skill_down_after_a_probe(tmp_path: Path, model_cache: Path) -> None:
    run_dir = tmp_path / "run"
    assert _hush_run(model_cache, run_dir, "--policy", "curriculum") == 0
    store = RunStore(run_dir)
    first = store.read_json(store.round(1).curriculum, Curriculum)
    assert first.probed == 0  # an untrained student is not judged: nothing to probe
    assert {s.skill: (s.level, s.move) for s in first.skills} == {"hush": (0, "stay"), "echo": (1, "stay")}

    second = store.read_json(store.round(2).curriculum, Curriculum)
    echo, hush = second.of("echo"), second.of("hush")
    assert echo is not None and hush is not None
    assert (echo.previous, echo.level, echo.move, echo.stalled) == (1, 0, "down", True)
    assert "out of reach" in echo.reason
    assert [(m.level, m.source) for m in echo.measured] == [(0, "probe"), (1, "dev")]
    assert (hush.level, hush.move) == (0, "stay") and "maintenance" in hush.reason
    probes = store.read_models(store.round(2).probe, ProbeResult)
    assert len(probes) == second.probed == 12 and {(p.skill, p.level) for p in probes} == {("echo", 0)}

    plan = store.read_json(store.round(2).plan, Plan)
    by_skill = {a.skill: a for a in plan.allocations}
    assert by_skill["echo"].difficulty == 0 and by_skill["hush"].difficulty == 0
    assert by_skill["echo"].reason.startswith(echo.reason)
    assert by_skill["hush"].n >= 2 and plan.total == 24  # maintenance data through the floor
    trained = {
        normalize_question(row["prompt"][-1]["content"])
        for row in pq.read_table(store.round(2).rows("sft")).to_pylist()
    }
    assert not trained & {normalize_question(p.question) for p in probes}  # probes are never trained on
    spans = read_spans(store.traces_db)
    probe_spans = [s for s in spans if s.kind == "tool" and s.name == "student.probe"]
    assert len(probe_spans) == 1 and probe_spans[0].round == 2

    summary = json.loads(store.summary_path.read_text())
    assert [r.get("levels") for r in summary["rounds"]] == [
        None,
        {"echo": 1, "hush": 0},
        {"echo": 0, "hush": 0},
    ]
    shown = teachloop(
        "inspect", str(run_dir), "plan", "-r", "2", "--json", cwd=tmp_path, model_cache=model_cache
    )
    assert shown.returncode == 0, shown.stderr
    assert {a["skill"]: a["difficulty"] for a in json.loads(shown.stdout)["plan"]["allocations"]} == {
        "echo": 0,
        "hush": 0,
    }
