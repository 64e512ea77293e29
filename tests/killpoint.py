"""Kill points: run ``teachloop`` so that it halts at a chosen moment inside a chosen node, for
tests that SIGKILL it there and resume.

A kill aimed by the clock ("0.3 s after the node's progress line") may land after a millisecond
node has finished, and a test cannot tell. Here the process itself stops at the moment asked for:
it writes the point's marker file (what the node had done by then) and sleeps until it is killed,
so every kill provably lands inside its node, unfinished, at the same place on any machine.

The test runs ``python killpoint.py ARGS...`` instead of ``python -m teachloop ARGS...`` with
``TEACHLOOP_KILLPOINT`` set to a ``KillPoint`` (JSON). The moments (``at``) of node ``node`` in
round ``round``:

- ``start``: its span is open, none of its work done;
- ``write``: before its ``n``-th file replacement under the run directory (every atomic write and
  every published model directory ends in ``os.replace``), so ``n - 1`` of its files are written;
- ``step``: before the ``n``-th training step of the round's trainers, ``n - 1`` steps taken;
- ``end``: its work returned and its span closed, but LangGraph has not checkpointed it yet.

With ``at`` left out nothing halts: the process only records, per node execution, the files it
replaced and the training steps it took (``moments``), so a test can aim at moments that exist.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

ENV = "TEACHLOOP_KILLPOINT"
SCRIPT = Path(__file__)


class KillPoint(BaseModel):
    run_dir: Path
    #: where the process says it halted (outside the run directory)
    marker: Path | None = None
    node: str = ""
    round: int = 0
    at: Literal["start", "write", "step", "end"] | None = None
    n: int = 1
    #: where an observing run (``at`` left out) writes what each node execution did
    moments: Path | None = None


class Landed(BaseModel):
    """What the marker file says: where the process halted and what the node had done by then."""

    node: str
    round: int
    at: str
    n: int
    written: list[str]
    steps: int


class Execution(BaseModel):
    """What one node execution did, recorded by an observing run."""

    node: str
    round: int
    written: list[str] = []
    steps: int = 0


def install(point: KillPoint) -> None:
    """Patch the tracer (node spans), ``os.replace`` and the trainers' step to watch for ``point``."""
    import transformers

    from teachloop.tracing.spans import Tracer

    run_dir = os.path.realpath(point.run_dir)
    current: list[Execution] = []  # the node execution in progress (at most one)
    seen: list[Execution] = []
    original_replace = os.replace

    def halt(execution: Execution) -> None:
        landed = Landed(
            node=execution.node,
            round=execution.round,
            at=point.at or "",
            n=point.n,
            written=execution.written,
            steps=execution.steps,
        )
        assert point.marker is not None
        tmp = point.marker.with_suffix(".tmp")
        tmp.write_text(landed.model_dump_json())
        original_replace(tmp, point.marker)
        while True:  # until SIGKILL
            time.sleep(60)

    def targeted(execution: Execution, at: str) -> bool:
        return (execution.node, execution.round, point.at) == (point.node, point.round, at)

    original_span = Tracer.span

    @contextmanager
    def span(self: Tracer, kind: Any, name: str, round: int | None = None, **kw: Any) -> Iterator[Any]:
        if kind != "node":
            with original_span(self, kind, name, round=round, **kw) as handle:
                yield handle
            return
        execution = Execution(node=name, round=round or 0)
        current.append(execution)
        try:
            with original_span(self, kind, name, round=round, **kw) as handle:
                if targeted(execution, "start"):
                    halt(execution)
                yield handle
        finally:
            current.remove(execution)
            seen.append(execution)
            if point.moments is not None:
                point.moments.write_text(json.dumps([e.model_dump() for e in seen]))
        if targeted(execution, "end"):
            halt(execution)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        path = os.path.realpath(dst)
        if current and path.startswith(run_dir + os.sep) and not Path(path).name.startswith(".tmp-"):
            execution = current[-1]
            if targeted(execution, "write") and len(execution.written) + 1 == point.n:
                halt(execution)
            execution.written.append(os.path.relpath(path, run_dir))
        original_replace(src, dst, *args, **kwargs)

    original_step = transformers.Trainer.training_step

    def training_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        if current:
            execution = current[-1]
            if targeted(execution, "step") and execution.steps + 1 == point.n:
                halt(execution)
            execution.steps += 1
        return original_step(self, *args, **kwargs)

    Tracer.span = span  # type: ignore[method-assign]
    os.replace = replace
    transformers.Trainer.training_step = training_step  # type: ignore[method-assign]


def kill_at(
    point: KillPoint, args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600
) -> Landed:
    """Run ``teachloop args`` until it halts at ``point``, SIGKILL it there, and say where it landed."""
    assert point.marker is not None and point.at is not None
    point.marker.unlink(missing_ok=True)
    log = point.marker.with_suffix(".log")
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args],
            cwd=cwd,
            env={**env, ENV: point.model_dump_json()},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + timeout
    while not point.marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"never reached {point}: {log.read_text()[-3000:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return Landed.model_validate_json(point.marker.read_text())


def observed_run(
    args: list[str], run_dir: Path, cwd: Path, env: dict[str, str], timeout: float = 600
) -> list[Execution]:
    """Run ``teachloop args`` to the end, recording what each node execution did."""
    moments = cwd / "moments.json"
    point = KillPoint(run_dir=run_dir, moments=moments)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env={**env, ENV: point.model_dump_json()},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [Execution.model_validate(e) for e in json.loads(moments.read_text())]


def main() -> None:
    install(KillPoint.model_validate_json(os.environ[ENV]))
    from teachloop.cli.app import main as teachloop

    sys.argv = ["teachloop", *sys.argv[1:]]
    teachloop()


if __name__ == "__main__":
    main()
