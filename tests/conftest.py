"""Shared fixtures: a tiny random Llama with SmolLM2's tokenizer, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import teachloop, tiny_run_args
from teachloop.training.student import TINY_STUDENT, resolve_student


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_student(model_cache: Path) -> Path:
    return resolve_student(TINY_STUDENT, model_cache)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory, model_cache: Path, tiny_student: Path) -> Path:
    """A complete, uninterrupted 2-round tiny run (the reference for resume tests too)."""
    tmp = tmp_path_factory.mktemp("loop")
    run_dir = tmp / "run"
    result = teachloop(*tiny_run_args(model_cache, run_dir), cwd=tmp, model_cache=model_cache)
    assert result.returncode == 0, result.stderr
    assert "test accuracy by round" in result.stdout
    assert "round 2  train" in result.stderr
    (tmp / "stderr.txt").write_text(result.stderr)  # the live progress, for test_progress.py
    return run_dir
