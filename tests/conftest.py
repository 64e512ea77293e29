"""Shared fixtures: a tiny random Llama with SmolLM2's tokenizer, built once per session; and the
order tests start in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import teachloop, tiny_run_args
from teachloop.training.student import TINY_STUDENT, resolve_student


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker (and every ``teachloop`` it starts) gets its share of the
    cores: torch's default of one thread per core makes N workers run N x cores threads, which spin
    against each other (two concurrent tiny runs: 26.9 s with 2 threads each, 22.2 s with one)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow tests first, each file kept whole (its module fixtures are built once): with
    ``-n auto --dist loadfile`` the longest files start while the short ones fill the other workers,
    instead of finishing last side by side."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture
def test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test plug-ins (tests/plugins: ``coin``, ``hush``) installed for this test: on the path of
    this process, for runs through ``cli_in_process``, and of every process it starts."""
    plugins = str(Path(__file__).parent / "plugins")
    monkeypatch.syspath_prepend(plugins)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (plugins, os.environ.get("PYTHONPATH")))))


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache per test session. Parallel workers (pytest-xdist) share it, under the
    session's common temporary directory: the real student is converted once (~50 s), not once per
    worker (resolve_student locks while it builds)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = base.parent / "models"
        shared.mkdir(exist_ok=True)
        return shared
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
