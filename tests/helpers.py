"""Running the real ``teachloop`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TINY_ARGS = [
    "--student",
    "tiny-random-llama",
    "--samples-per-round",
    "24",
    "--set",
    "eval.dev_per_skill=3",
    "--set",
    "eval.test_per_skill=3",
    "--set",
    "train.batch_size=8",
]


def cli_env(model_cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(model_cache.parent / "xdg")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def node_seconds(run_dir: Path, round_: int, node: str) -> float:
    """How long ``node`` of ``round_`` took in a finished run: kills aimed inside a node scale with it,
    so they land inside it on a fast machine as on a loaded one."""
    from teachloop.tracing.spans import read_spans

    for span in read_spans(run_dir / "traces.sqlite"):
        if span.kind == "node" and span.name == node and (span.round or 0) == round_:
            return span.end - span.start
    raise LookupError(f"no {node} node in round {round_} of {run_dir}")


def teachloop(
    *args: str, cwd: Path, model_cache: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``env`` replaces the default ``cli_env(model_cache)`` (e.g. to add a PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "teachloop", *args],
        cwd=cwd,
        env=env or cli_env(model_cache),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tiny_run_args(model_cache: Path, run_dir: Path, rounds: int = 2) -> list[str]:
    return [
        "run",
        *TINY_ARGS,
        "--rounds",
        str(rounds),
        "--run-dir",
        str(run_dir),
        "--set",
        f"model_cache={model_cache}",
    ]


def scripted_teacher_args(base_url: str) -> list[str]:
    """Every LLM role on the loopback server answering as ``ScriptedTeacher`` (model ``scripted``)."""
    return ["--teacher", "openai", "--teacher-base-url", base_url, "--teacher-model", "scripted"]


def cli_in_process(*args: str) -> int:
    """Run ``teachloop args`` in this process through the CLI's own ``main`` (its error handling
    included); returns the exit code. Read stdout and stderr with pytest's ``capsys``."""
    from teachloop.cli.app import main

    saved = sys.argv
    sys.argv = ["teachloop", *args]
    try:
        main()
    except SystemExit as done:
        return int(done.code or 0)
    finally:
        sys.argv = saved
    return 0


def assert_whole(run_dir: Path) -> None:
    """No temporary file is left and every table and JSON file reads back whole."""
    import json

    import pyarrow.parquet as pq

    assert not list(run_dir.rglob(".tmp-*")), "a temporary file was left behind"
    for path in run_dir.rglob("*.parquet"):
        pq.read_table(path)  # raises on a truncated file
    for path in run_dir.rglob("*.json"):
        json.loads(path.read_text())


def trained(run_dir: Path, round_: int) -> dict[str, tuple[str, list[dict[str, float]]]]:
    """Every model a round trained (its stages and ``model``), as the SHA-256 of its tensors (names,
    dtypes, shapes and bytes) with the trainer's per-step log: equal records mean bit-identical
    weights reached through bit-identical losses."""
    import hashlib
    import json

    import torch
    from safetensors.torch import load_file

    from teachloop.tracing.store import RunStore
    from teachloop.training.common import STEPS_FILE

    paths = RunStore(run_dir).round(round_)
    records = {}
    for model in sorted([paths.model, *paths.dir.glob("stages/*")]):
        digest = hashlib.sha256()
        for weights in sorted(model.glob("*.safetensors")):
            for name, tensor in sorted(load_file(weights).items()):
                digest.update(f"{weights.name}:{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
                digest.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        steps = json.loads((model / STEPS_FILE).read_text())
        records[str(model.relative_to(paths.dir))] = (digest.hexdigest(), steps)
    return records


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: equal snapshots mean nothing was changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def refused_url() -> Iterator[str]:
    """An OpenAI-style base URL that refuses connections for as long as the block runs: its port
    is bound but not listening, so the kernel refuses and no other process can take it meanwhile
    (unlike a port probed and closed, or a fixed port such as 9, which may have a listener)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/v1"
