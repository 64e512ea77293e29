"""Machine faults stop a run with one line and exit code 3, and lose nothing: a full disk (a real
tmpfs that fills up, and an in-process write that fails half-way) and a trainer out of memory
(TRL's real trainer whose step raises ``torch.OutOfMemoryError``). After the fix, ``resume``
finishes the run, and the run equals an uninterrupted one."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from helpers import assert_whole, cli_in_process, teachloop, tiny_run_args
from teachloop.agents.selector import SelectedSample
from teachloop.foundation import files
from teachloop.foundation.faults import is_disk_full, is_out_of_memory
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore
from teachloop.training.sft import AnswerOnlySFTTrainer


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except BaseException as caught:
        return caught


def test_out_of_memory_is_recognised_in_its_disguises() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 8 GB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"))
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(_chained(ValueError("step failed"), torch.OutOfMemoryError("CUDA")))
    assert not is_out_of_memory(RuntimeError("size mismatch for lm_head"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only allocator errors count


def test_a_full_disk_is_recognised_in_its_disguises() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    safetensors_like = type("SafetensorError", (Exception,), {})
    assert is_disk_full(safetensors_like("I/O error: No space left on device (os error 28)"))
    assert is_disk_full(_chained(RuntimeError("save failed"), OSError(errno.ENOSPC, "full")))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(FileNotFoundError(errno.ENOENT, "No such file"))


class _DiskFillsUp(io.FileIO):
    """A real file on which the disk fills up half-way through the write."""

    def write(self, data: Any) -> int:
        super().write(bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_full_disk_then_out_of_memory_stop_the_run_in_one_line_and_resume_finishes_it(
    tmp_path: Path, model_cache: Path, tiny_student: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    run_dir = tmp_path / "run"
    store = RunStore(run_dir)
    args = [*tiny_run_args(model_cache, run_dir, rounds=1)]

    # the disk fills up while round 1's plan is written: a half-written temp file, then ENOSPC
    def full_open(path: Any, mode: str = "r", *rest: Any, **kw: Any) -> Any:
        if Path(path).name.startswith(".tmp-plan.json"):
            return _DiskFillsUp(path, "wb")
        return builtins.open(path, mode, *rest, **kw)

    with monkeypatch.context() as patched:
        patched.setattr(files, "open", full_open, raising=False)
        assert cli_in_process(*args) == 3
    line = _last_error(capsys.readouterr().err)
    assert line == (
        f"error: disk full while writing {run_dir} (OSError); free some space, "
        f"then run 'teachloop resume {run_dir}'"
    )
    assert not store.round(1).plan.exists() and (store.round(0).weakness).is_file()
    assert_whole(run_dir)

    # space is back; now training runs out of memory in TRL's first step
    def oom(*a: Any, **k: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with monkeypatch.context() as patched:
        patched.setattr(AnswerOnlySFTTrainer, "training_step", oom)
        assert cli_in_process("resume", str(run_dir)) == 3
    line = _last_error(capsys.readouterr().err)
    assert line == (
        f"error: round 1: training ran out of memory at train.batch_size=8; lower train.batch_size in "
        f"{run_dir / 'config.yaml'}, then run 'teachloop resume {run_dir}'"
    )
    assert store.round(1).plan.is_file() and not store.round(1).model.exists()
    assert_whole(run_dir)

    # the user lowers the batch size as told and resumes: the round finishes from where it stopped
    config = yaml.safe_load(store.config_path.read_text())
    config["train"]["batch_size"] = 4
    store.config_path.write_text(yaml.safe_dump(config))
    assert cli_in_process("resume", str(run_dir)) == 0
    resumed = capsys.readouterr().err
    assert "round 1  train" in resumed and "round 1  select" not in resumed  # finished nodes not redone
    summary = json.loads(store.summary_path.read_text())
    assert summary["status"] == "complete" and [r["round"] for r in summary["rounds"]] == [0, 1]
    assert (store.round(1).model / "config.json").is_file()
    failed = [
        (s.name, s.status) for s in read_spans(store.traces_db) if s.kind == "node" and s.status != "ok"
    ]
    assert failed == [("plan", "error"), ("train", "error")]
    assert_whole(run_dir)


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


@pytest.mark.slow
def test_a_real_full_disk_stops_the_run_and_resume_after_freeing_space_equals_an_uninterrupted_run(
    tmp_path: Path, model_cache: Path, finished_run: Path
) -> None:
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(disk, "8m"):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        run_dir = disk / "run"
        # 8 MiB hold the splits, round 0 and round 1's data, not round 1's model (16 MiB)
        stopped = teachloop(*tiny_run_args(model_cache, run_dir), cwd=tmp_path, model_cache=model_cache)
        assert stopped.returncode == 3, stopped.stderr[-3000:]
        line = _last_error(stopped.stderr)
        assert line.startswith(f"error: disk full while writing {run_dir} (")
        assert line.endswith(f"free some space, then run 'teachloop resume {run_dir}'")
        assert not RunStore(run_dir).round(1).model.exists()
        assert_whole(run_dir)
        subprocess.run(["mount", "-o", "remount,size=96m", str(disk)], check=True)
        assert cli_in_process("resume", str(run_dir)) == 0
        ours, reference = RunStore(run_dir), RunStore(finished_run)
        summary = json.loads(ours.summary_path.read_text())
        expected = json.loads(reference.summary_path.read_text())
        assert summary["status"] == "complete"
        assert [r.get("samples") for r in summary["rounds"]] == [r.get("samples") for r in expected["rounds"]]
        for r in (1, 2):
            ids = [s.task.id for s in ours.read_models(ours.round(r).selected, SelectedSample)]
            ref = [s.task.id for s in reference.read_models(reference.round(r).selected, SelectedSample)]
            assert ids == ref
        assert_whole(run_dir)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
