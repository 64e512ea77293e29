"""CritiQ through the real openai client against a scripted loopback judge (tests/teacher_script.py):
``teachloop criteria mine`` keeps, revises and drops criteria and reports them on held-out pairs,
and a loop given pairs mines at setup, scores its samples with the criteria and the student's pass
rate, and samples its training set with the scores as logits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fake_openai import FakeOpenAI
from teacher_script import ScriptedTeacher

from helpers import TINY_ARGS, cli_in_process, refused_url, teachloop
from teachloop.tracing.spans import read_spans

#: Pairs whose wrong answer is the shorter one: three of the eight that seed 0 keeps for mining, so
#: the scripted ``answer_is_short`` agrees with the people on 5/8 and is revised.
SHORT_WRONG = {0, 4, 9}


def write_pairs(path: Path, n: int = 12) -> Path:
    lines = []
    for i in range(n):
        a, b = 10 + i, 20 + 3 * i
        right = str(a + b)
        wrong = "1" if i in SHORT_WRONG else str(a + b + 1000)
        good = {"question": f"What is {a} + {b}?", "solution": f"{a} + {b} = {right}", "answer": right}
        bad = {"question": f"What is {a} + {b}?", "solution": "", "answer": wrong}
        better = "a" if i % 2 else "b"
        first, second = (good, bad) if better == "a" else (bad, good)
        lines.append(
            json.dumps({"id": f"q{i}", "skill": "chain_sum", "a": first, "b": second, "better": better})
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def mine_args(pairs: Path, out: Path, base_url: str) -> list[str]:
    return [
        "criteria",
        "mine",
        "--pairs",
        str(pairs),
        "--out",
        str(out),
        "--teacher-base-url",
        base_url,
        "--teacher-model",
        "scripted",
        "--set",
        "teacher.criteria.votes=2",
        "--set",
        "teacher.criteria.proposals=3",
    ]


def test_criteria_mine_keeps_revises_drops_and_reports_held_out(
    tmp_path: Path, model_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "mined"
    with FakeOpenAI(ScriptedTeacher()) as server:
        assert cli_in_process(*mine_args(pairs, out, server.base_url)) == 0
        mined = capsys.readouterr().out
        requests = server.counts["requests"]
        assert cli_in_process(*mine_args(pairs, out, server.base_url)) == 0
        assert server.counts["requests"] == requests  # a finished mining is read back, not redone
    report = json.loads((out / "criteria.json").read_text())
    final = {c["criterion"]["name"]: c for c in report["criteria"]}
    assert set(final) == {"sum_is_correct", "answer_is_short_fixed", "sum_checked"}
    assert all(c["status"] == "kept" and c["held_out_accuracy"] == 1.0 for c in final.values())
    assert final["answer_is_short_fixed"]["criterion"]["origin"] == "revised"
    assert [d["criterion"]["name"] for d in report["dropped"]] == ["first_is_better"]
    assert report["held_out_pairs"] == 4 and report["mining_pairs"] == 8
    assert report["combined_held_out"] == 1.0 and report["plain_held_out"] == 1.0
    assert "combined criteria 100%, plain 'which is better' prompt 100%; dropped: first_is_better" in mined
    shown = teachloop("criteria", "show", str(out / "criteria.json"), cwd=tmp_path, model_cache=model_cache)
    assert shown.returncode == 0 and "dropped: first_is_better" in shown.stdout
    not_criteria = teachloop("criteria", "show", str(pairs), cwd=tmp_path, model_cache=model_cache)
    assert not_criteria.returncode == 2 and "is not a 'teachloop criteria mine' result" in not_criteria.stderr
    spans = read_spans(out / "traces.sqlite")
    assert any(s.kind == "llm" and s.name.startswith("criteria_worker.compare") for s in spans)
    assert any(s.name == "criteria_manager.revise" for s in spans)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "pairs file"),
        (lambda d: (d / "pairs.jsonl").write_text('{"id": "x"}\n'), "line 1"),
        (lambda d: ((d / "mined").mkdir(), (d / "mined" / "other.txt").write_text("mine")), "already holds"),
        (lambda d: None, "not reachable"),
    ],
)
def test_criteria_mine_refuses_bad_input_in_one_line(
    tmp_path: Path, setup: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if message in ("already holds", "not reachable"):
        write_pairs(tmp_path / "pairs.jsonl")
    setup(tmp_path)  # type: ignore[operator]
    with refused_url() as url:
        code = cli_in_process(*mine_args(tmp_path / "pairs.jsonl", tmp_path / "mined", url))
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def criteria_run(tmp_path_factory: pytest.TempPathFactory, model_cache: Path, tiny_student: Path) -> Path:
    """One round that mines at setup, scores with criteria + difficulty and samples its data."""
    tmp = tmp_path_factory.mktemp("criteria_run")
    pairs = write_pairs(tmp / "pairs.jsonl")
    run_dir = tmp / "run"
    with FakeOpenAI(ScriptedTeacher()) as server:
        code = cli_in_process(
            "run", *TINY_ARGS, "--rounds", "1", "--run-dir", str(run_dir), "--set", f"model_cache={model_cache}",
            "--teacher-base-url", server.base_url, "--teacher-model", "scripted",
            "--set", f"teacher.criteria.pairs={pairs}", "--set", "teacher.criteria.votes=2",
            "--set", "teacher.scoring.difficulty_samples=2", "--set", "teacher.scoring.selection=sample",
        )  # fmt: skip
    assert code == 0
    return run_dir


def test_loop_mines_at_setup_and_scores_with_criteria_and_difficulty(
    criteria_run: Path, model_cache: Path
) -> None:
    mined = json.loads((criteria_run / "criteria" / "criteria.json").read_text())
    assert {c["criterion"]["name"] for c in mined["criteria"]} >= {"sum_is_correct"}
    shown = teachloop("criteria", "show", str(criteria_run), cwd=criteria_run.parent, model_cache=model_cache)
    assert shown.returncode == 0 and "combined criteria" in shown.stdout
    usable = _usable(criteria_run)
    assert len(usable) > 0
    assert usable["quality"].notna().all() and set(usable["quality"]) == {
        0.0,
        1.0,
    }  # even/odd question lengths
    assert usable["pass_rate"].between(0, 1).all()
    expected = (usable["quality"] + 1 - usable["pass_rate"]) / 2
    assert (usable["score"] - expected).abs().max() < 1e-9
    spans = read_spans(criteria_run / "traces.sqlite")
    assert any(s.name == "judge.criteria" for s in spans)
    assert any(s.name == "student.pass_rate" for s in spans)
    assert json.loads((criteria_run / "summary.json").read_text())["status"] == "complete"


def _usable(run_dir: Path) -> pd.DataFrame:
    scored = pd.read_parquet(run_dir / "rounds" / "1" / "scored.parquet")
    return scored[scored["verified"] & ~scored["duplicate"] & ~scored["contaminated"]]


def test_a_distilled_scorer_ranks_samples_without_llm_calls(
    criteria_run: Path,
    tmp_path: Path,
    model_cache: Path,
    tiny_student: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scorer = tmp_path / "scorer"
    code = cli_in_process(
        "criteria", "distill", str(criteria_run), "--out", str(scorer), "--base", str(tiny_student),
        "--pairs", str(write_pairs(tmp_path / "pairs.jsonl")), "--epochs", "2", "--learning-rate", "1e-3",
        "--max-length", "128",
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((scorer / "distill.json").read_text())
    assert metrics["train_pairs"] >= 4 and metrics["human_pairs"] == 12
    assert "criteria-labelled pairs" in capsys.readouterr().out
    run_dir = tmp_path / "run"
    code = cli_in_process(
        "run", *TINY_ARGS, "--rounds", "1", "--run-dir", str(run_dir), "--set", f"model_cache={model_cache}",
        "--set", f"teacher.criteria.scorer={scorer}",
    )  # fmt: skip
    assert code == 0
    spans = read_spans(run_dir / "traces.sqlite")
    assert not [s for s in spans if s.kind == "llm"]
    assert any(s.name == "reward_model.score" for s in spans)
    quality = _usable(run_dir)["quality"]
    assert quality.between(0, 1).all() and quality.min() == 0.0 and quality.max() == 1.0  # percentiles


def test_distill_needs_criteria_scored_samples(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_in_process("criteria", "distill", str(finished_run), "--out", str(tmp_path / "s"))
    assert code == 2 and "criteria-labelled pair" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
