"""Run a round's training job under ``accelerate launch``: the entry point, and the launcher.

    accelerate launch [--config_file CONFIG] -m teachloop.training.launch rounds/<k>/train_job.json

Every process runs the same stages (``training.job``); accelerate, with the user's config, says
how many processes there are and how they share the model (DDP, DeepSpeed ZeRO, FSDP, several
nodes). The main process writes the metrics to the job's ``result`` file. teachloop has no
launcher of its own: ``launch_job`` only starts ``accelerate launch`` as a subprocess, with its
output in ``rounds/<k>/train.log``. The job's progress (steps, loss, time left) goes to
``rounds/<k>/train_progress.jsonl``, which ``launch_job`` forwards to the loop's console as it grows.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from teachloop.foundation.errors import TrainingError
from teachloop.foundation.files import atomic_write_json, atomic_write_text
from teachloop.tracing.progress import JsonLinesReporter, forward_new_lines, reporting
from teachloop.training.job import TrainJob, run_stage, stage_metrics

log = logging.getLogger(__name__)
#: How often the loop forwards a launched job's progress (seconds).
_POLL_S = 0.5


def run_job(job: TrainJob) -> dict[str, float]:
    """Every stage in order in this process; returns the round's flat metrics."""
    env = None
    if job.needs_env:
        from teachloop.environments.registry import load_environment

        env = load_environment(job.env, job.env_options)
    metrics: dict[str, float] = {}
    for index, stage in enumerate(job.stages):
        metrics |= stage_metrics(stage, run_stage(job, index, env))
    return metrics


def accelerate_command(job_path: Path, config_file: Path | None, extra_args: list[str]) -> list[str]:
    config = ["--config_file", str(config_file)] if config_file else []
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *config,
        *extra_args,
        "-m",
        "teachloop.training.launch",
        str(job_path),
    ]


def progress_path(job: TrainJob) -> Path:
    """Where a launched job's main process writes its progress (JSON lines) for the loop to show."""
    return job.result.parent / "train_progress.jsonl"


def launch_job(
    job: TrainJob, job_path: Path, config_file: Path | None, extra_args: list[str], log_path: Path
) -> dict[str, float]:
    """Write the job, run it with ``accelerate launch``, and return the metrics it wrote."""
    atomic_write_text(job_path, job.model_dump_json(indent=2))
    job.result.unlink(missing_ok=True)
    command = accelerate_command(job_path, config_file, extra_args)
    log.info("training with: %s", " ".join(command))
    progress = progress_path(job)
    progress.unlink(missing_ok=True)
    with open(log_path, "w") as out:
        out.write(" ".join(command) + "\n")
        out.flush()
        finished = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        offset = 0
        try:
            while finished.poll() is None:  # the job's progress reaches this process's reporter
                time.sleep(_POLL_S)
                offset = forward_new_lines(progress, offset)
        except BaseException:  # interrupted: the job must not train on without its loop
            finished.kill()
            finished.wait()
            raise
        forward_new_lines(progress, offset)
    if finished.returncode != 0 or not job.result.is_file():
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
        raise TrainingError(
            f"accelerate launch failed (exit {finished.returncode}); see {log_path}"
            + (f": {lines[-1].strip()[:300]}" if lines else "")
        )
    return {k: float(v) for k, v in json.loads(job.result.read_text()).items()}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: accelerate launch -m teachloop.training.launch TRAIN_JOB.json")
    job = TrainJob.model_validate_json(Path(args[0]).read_text())
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with reporting(JsonLinesReporter(progress_path(job))):
        metrics = run_job(job)
    from accelerate import PartialState

    if PartialState().is_main_process:
        atomic_write_json(job.result, metrics)


if __name__ == "__main__":
    main()
