"""A loop round on every shipped environment, and on the example plug-in package installed with
pip, with the tiny model through the real CLI; each at a different feedback level."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli_env, cli_in_process, teachloop
from teachloop.tracing.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "environments" / "examples" / "unit_conversion"
SMALL = [
    "--student", "tiny-random-llama", "--rounds", "1", "--samples-per-round", "8",
    "--set", "eval.dev_per_skill=2", "--set", "eval.test_per_skill=2", "--set", "train.batch_size=8",
]  # fmt: skip


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed as a user would, into its own directory (found via PYTHONPATH)."""
    tmp = tmp_path_factory.mktemp("example")
    source = tmp / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


def _jsonl(tmp: Path) -> Path:
    rows = [
        {"question": f"What is {a} times {b}?", "answer": a * b, "skill": "times"}
        for a in range(2, 7)
        for b in range(2, 6)
    ]
    rows += [
        {"question": f"What is {a} minus {b}?", "answer": a - b, "skill": "minus"}
        for a in range(10, 15)
        for b in range(1, 5)
    ]
    path = tmp / "arithmetic.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _run(args: list[str], tmp: Path, model_cache: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    """One round through the CLI's ``main`` in this process (no second start-up of torch and TRL)."""
    run_dir = tmp / "run"
    code = cli_in_process(
        "run", *SMALL, *args, "--run-dir", str(run_dir), "--set", f"model_cache={model_cache}"
    )  # fmt: skip
    assert code == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and [r["round"] for r in summary["rounds"]] == [0, 1]
    assert summary["rounds"][1]["samples"]["selected"] > 0
    assert (RunStore(run_dir).round(1).model / "model.safetensors").is_file()
    return run_dir, summary


def _feedback(run_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(RunStore(run_dir).round(0).feedback.read_text())


def test_humaneval_round(tmp_path: Path, model_cache: Path, tiny_student: Path) -> None:
    run_dir, summary = _run(["--env", "humaneval", "--set", "eval.max_new_tokens=32"], tmp_path, model_cache)
    assert set(summary["rounds"][0]["dev"]["skills"]) == {"python_function"}
    assert summary["rounds"][0]["dev"]["n"] == 2
    evals = RunStore(run_dir).read_rows(RunStore(run_dir).round(0).eval("dev"))
    assert all("sandbox" in r["feedback"] for r in evals if r["reward"] < 1)
    assert _feedback(run_dir)["level"] == "skill_list"


def test_ifeval_round_with_a_skill_tree(tmp_path: Path, model_cache: Path, tiny_student: Path) -> None:
    skills = "punctuation:no_comma,startend:quotation,startend:end_checker,detectable_format:title"
    run_dir, summary = _run(
        ["--env", "ifeval", "--env-option", f"skills={skills}", "--set", "teacher.feedback=skill_tree"],
        tmp_path,
        model_cache,
    )
    assert set(summary["rounds"][1]["test"]["skills"]) == set(skills.split(","))
    groups = {g["name"] for g in _feedback(run_dir)["groups"]}
    assert groups == {"punctuation", "startend", "detectable_format"}
    report = json.loads(RunStore(run_dir).round(0).weakness.read_text())
    assert report["level"] == "skill_tree" and report["groups"]


def test_jsonl_round_with_open_ended_feedback(tmp_path: Path, model_cache: Path, tiny_student: Path) -> None:
    path = _jsonl(tmp_path)
    run_dir, summary = _run(
        ["--env", "jsonl", "--env-option", f"path={path}", "--env-option", "scoring=numeric",
         "--set", "teacher.feedback=open_ended"],
        tmp_path,
        model_cache,
    )  # fmt: skip
    assert set(summary["rounds"][0]["dev"]["skills"]) == {"times", "minus"}
    view = _feedback(run_dir)
    assert view["level"] == "open_ended" and view["skills"] == {}
    assert all(f["skill"] is None for f in view["failures"])
    plan = json.loads(RunStore(run_dir).round(1).plan.read_text())
    assert {a["skill"] for a in plan["allocations"]} == {"times", "minus"}
    assert all("open-ended" in a["reason"] for a in plan["allocations"])


def test_example_package_installed_with_pip_is_listed_and_runs(
    tmp_path: Path, model_cache: Path, tiny_student: Path, example_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = cli_env(model_cache)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(example_site), env.get("PYTHONPATH")) if p)
    listed = teachloop("envs", "list", cwd=tmp_path, model_cache=model_cache, env=env)
    assert listed.returncode == 0 and "unit-conversion  (teachloop-unit-conversion 0.1.0)" in listed.stdout
    shown = teachloop("envs", "show", "unit-conversion", cwd=tmp_path, model_cache=model_cache, env=env)
    assert shown.returncode == 0 and "km_to_m" in shown.stdout and "task generator: yes" in shown.stdout
    monkeypatch.syspath_prepend(example_site)  # the run in this process finds the install as `envs` did
    _, summary = _run(["--env", "unit-conversion"], tmp_path, model_cache)
    assert set(summary["rounds"][1]["dev"]["skills"]) == {"km_to_m", "hours_to_minutes", "kg_to_g"}
    # without the package on the path the environment is unknown, so it really came from the install
    missing = teachloop("envs", "show", "unit-conversion", cwd=tmp_path, model_cache=model_cache)
    assert missing.returncode == 2 and "unknown environment 'unit-conversion'" in missing.stderr


def test_a_used_up_training_pool_keeps_the_student(
    tmp_path: Path,
    model_cache: Path,
    tiny_student: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fixed pool (jsonl, humaneval) runs dry: the round after finds nothing new and trains nothing."""
    rows = [{"question": f"Name the number {i}.", "answer": i, "skill": "names"} for i in range(5)]
    path = tmp_path / "small.jsonl"  # 5 questions: 1 dev, 2 test, a pool of 2
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run_dir = tmp_path / "run"
    code = cli_in_process(
        "run", *SMALL, "--rounds", "2", "--env", "jsonl", "--env-option", f"path={path}",
        "--run-dir", str(run_dir), "--set", f"model_cache={model_cache}",
    )  # fmt: skip
    stderr = capsys.readouterr().err
    assert code == 0, stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and [r["round"] for r in summary["rounds"]] == [0, 1, 2]
    assert [r["samples"]["selected"] for r in summary["rounds"][1:]] == [2, 0]
    store = RunStore(run_dir)
    # the plans it could not fill say so, in plan.json and on the console
    for round_, made in ((1, 2), (2, 0)):
        shortfalls = json.loads(store.round(round_).plan.read_text())["shortfalls"]
        assert shortfalls == [{"skill": "names", "planned": 8, "made": made}]
        # the warning line the console shows (in this process pytest's log capture holds it)
        assert f"round {round_}: could not make every planned sample: names {made} of 8" in caplog.text
    assert json.loads(store.round(2).train_metrics.read_text()) == {"rows": 0.0}
    assert not store.round(2).model.exists()  # round 2 evaluated round 1's model
    shown = teachloop("inspect", str(run_dir), "--json", cwd=tmp_path, model_cache=model_cache)
    assert shown.returncode == 0, shown.stderr
