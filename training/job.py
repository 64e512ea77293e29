"""A round's training as a job: SFT, then DPO, then GRPO, each stage starting from the last.

The order is TULU 3's: SFT first teaches the answers and their format, DPO then pushes the
student away from its own verified failures, and RL with the verifier's reward (GRPO) refines
the best policy so far. A stage runs only when the round has data for it. Earlier stages write
to ``rounds/<k>/stages/<trainer>``, the last one to ``rounds/<k>/model``.

The job is a JSON file (``rounds/<k>/train_job.json``), so the same code runs inside the loop
or as ``accelerate launch -m teachloop.training.launch rounds/<k>/train_job.json`` on several
GPUs or nodes. Every process of a distributed job trains and calls ``save_model`` (DeepSpeed
ZeRO-3 and FSDP gather the weights collectively) into one staging directory; the main process
then renames it into place, so a stage's output appears whole or not at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from datasets import Dataset
from pydantic import BaseModel, ConfigDict, Field

from teachloop.environments.base import Environment
from teachloop.foundation.files import clear_stale_temps, publish_dir, staging_dir
from teachloop.tracing.store import RoundPaths
from teachloop.training.config import TrainConfig, Trainer

#: Stage order within a round (see the module docstring for why).
ORDER: tuple[Trainer, ...] = ("sft", "dpo", "grpo")
TRAINER_CLASSES = {"sft": "SFTTrainer", "dpo": "DPOTrainer", "grpo": "GRPOTrainer"}


class Stage(BaseModel):
    model_config = ConfigDict(frozen=True)

    trainer: Trainer
    data: Path = Field(description="parquet file with the stage's rows")
    drop_task_ids: list[str] = Field(
        default_factory=list, description="rows (by task_id) another stage of the round trains on"
    )
    rows: int = Field(description="rows the stage trains on")
    out: Path = Field(description="the model directory the stage writes")


class TrainJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    student: Path = Field(description="the model the first stage starts from")
    stages: list[Stage]
    settings: TrainConfig = Field(description="this round's settings (learning rates already decayed)")
    seed: int
    env: str = Field(description="environment name; GRPO rewards come from its verifier")
    env_options: dict[str, Any] = Field(default_factory=dict)
    result: Path = Field(description="where a launched job's main process writes the metrics")

    def start_of(self, index: int) -> Path:
        return self.student if index == 0 else self.stages[index - 1].out

    @property
    def needs_env(self) -> bool:
        return any(s.trainer == "grpo" for s in self.stages)


def build_job(
    student: Path,
    paths: RoundPaths,
    rows: dict[Trainer, tuple[Path, int]],
    drop_from_sft: list[str],
    settings: TrainConfig,
    seed: int,
    env: str,
    env_options: dict[str, Any],
) -> TrainJob:
    """The round's stages in ``ORDER``, for every trainer with rows (``rows``: data file, count)."""
    used = [t for t in ORDER if rows.get(t, (None, 0))[1] > 0]
    stages = [
        Stage(
            trainer=t,
            data=rows[t][0],
            drop_task_ids=drop_from_sft if t == "sft" else [],
            rows=rows[t][1],
            out=paths.model if i == len(used) - 1 else paths.stage(t),
        )
        for i, t in enumerate(used)
    ]
    return TrainJob(
        student=student,
        stages=stages,
        settings=settings,
        seed=seed,
        env=env,
        env_options=env_options,
        result=paths.train_metrics,
    )


def clear_outputs(job: TrainJob) -> None:
    """Remove what a killed earlier attempt left in the stages' staging directories."""
    for stage in job.stages:
        clear_stale_temps(stage.out.parent, stage.out.name)


def stage_dataset(stage: Stage) -> Dataset:
    """The stage's rows, read through the datasets cache so that every process of a distributed job
    finds the tokenised copy the main process made (an in-memory table's cache is per process)."""
    dataset = Dataset.from_parquet(str(stage.data))
    assert isinstance(dataset, Dataset)  # from_parquet of one file is one split
    if stage.drop_task_ids:
        dropped = set(stage.drop_task_ids)
        dataset = dataset.select([i for i, t in enumerate(dataset["task_id"]) if t not in dropped])
    return dataset


def run_stage(job: TrainJob, index: int, env: Environment | None) -> dict[str, float]:
    """Train one stage in this process (one rank of a distributed job, or the loop itself)."""
    from accelerate import PartialState

    stage = job.stages[index]
    staging = staging_dir(stage.out)
    staging.mkdir(parents=True, exist_ok=True)
    data, start, seed = stage_dataset(stage), job.start_of(index), job.seed + index
    # each trainer's module is imported only when its stage runs: importing TRL's DPO and GRPO
    # trainers costs ~3 s, which an SFT-only round (the default) need not pay
    try:
        if stage.trainer == "sft":
            from teachloop.training.sft import fit_sft

            metrics = fit_sft(start, data, staging, job.settings, seed)
        elif stage.trainer == "dpo":
            from teachloop.training.dpo import fit_dpo

            metrics = fit_dpo(start, data, staging, job.settings, seed)
        else:
            if env is None:
                raise ValueError("a GRPO stage needs the environment for its rewards")
            from teachloop.training.grpo import fit_grpo

            metrics = fit_grpo(start, data, staging, job.settings, seed, env)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a failed stage leaves no half-written model
        raise
    state = PartialState()  # set up by the stage's trainer; one process outside accelerate
    state.wait_for_everyone()
    if state.is_main_process:
        publish_dir(staging, stage.out)
    state.wait_for_everyone()
    return metrics


def stage_metrics(stage: Stage, metrics: dict[str, float]) -> dict[str, float]:
    """Flat metrics for train_metrics.json: SFT's as they are, the others under ``dpo/``, ``grpo/``."""
    prefix = "" if stage.trainer == "sft" else f"{stage.trainer}/"
    return {f"rows/{stage.trainer}": float(stage.rows)} | {f"{prefix}{k}": v for k, v in metrics.items()}
