"""Bad input: one line on stderr, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import teachloop


def _assert_clean_failure(result, must_mention: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and must_mention in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "mention"),
    [
        (["--env", "no-such-env"], "unknown environment 'no-such-env'"),
        (["--student", "/no/such/model"], "/no/such/model"),
        (["--rounds", "-1"], "rounds"),
        (["--policy", "best"], "policy"),
        (["--set", "train.learning_rate=-1"], "train.learning_rate"),
        (["--set", "train.lerning_rate=1"], "lerning_rate"),
        (["--rounds", "abc"], "--rounds"),
        (["--env-option", "novalue"], "key=value"),
    ],
)
def test_bad_run_input(tmp_path: Path, model_cache: Path, args: list[str], mention: str) -> None:
    run_dir = tmp_path / "run"
    result = teachloop("run", *args, "--run-dir", str(run_dir), cwd=tmp_path, model_cache=model_cache)
    _assert_clean_failure(result, mention)
    assert not run_dir.exists()


def test_bad_config_file(tmp_path: Path, model_cache: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rounds: [1, 2\n")
    result = teachloop(
        "run", "--config", str(cfg), "--run-dir", str(tmp_path / "r"), cwd=tmp_path, model_cache=model_cache
    )
    _assert_clean_failure(result, "not valid YAML")
    cfg.write_text("teacher:\n  samples_per_round: many\n")
    result = teachloop(
        "run", "--config", str(cfg), "--run-dir", str(tmp_path / "r"), cwd=tmp_path, model_cache=model_cache
    )
    _assert_clean_failure(result, "teacher.samples_per_round")
    result = teachloop(
        "run", "--config", str(tmp_path / "missing.yaml"), cwd=tmp_path, model_cache=model_cache
    )
    _assert_clean_failure(result, "does not exist")
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_run_dir_as_user(tmp_path: Path, model_cache: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = teachloop("run", "--run-dir", str(locked / "run"), cwd=tmp_path, model_cache=model_cache)
    _assert_clean_failure(result, "not writable")


def test_run_dir_that_cannot_be_created(tmp_path: Path, model_cache: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = teachloop("run", "--run-dir", str(blocker / "run"), cwd=tmp_path, model_cache=model_cache)
    _assert_clean_failure(result, "cannot create run directory")
    assert blocker.read_text() == "x"


def test_existing_run_dir_is_never_overwritten(tmp_path: Path, model_cache: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("mine")
    result = teachloop("run", "--run-dir", str(run_dir), cwd=tmp_path, model_cache=model_cache)
    _assert_clean_failure(result, "already exists")
    assert sorted(p.name for p in run_dir.iterdir()) == ["keep.txt"]


def test_resume_and_status_of_a_non_run(tmp_path: Path, model_cache: Path) -> None:
    _assert_clean_failure(
        teachloop("resume", str(tmp_path), cwd=tmp_path, model_cache=model_cache), "not a teachloop run"
    )
    _assert_clean_failure(
        teachloop("status", str(tmp_path), cwd=tmp_path, model_cache=model_cache), "not a teachloop run"
    )
