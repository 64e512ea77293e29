"""Settings of a round's training, shared by every recipe; DPO's and GRPO's own settings sit beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from teachloop.foundation.settings import Settings
from teachloop.training.dpo_config import DPOSettings
from teachloop.training.grpo_config import GRPOSettings

#: How a round trains: one trainer for every skill, or ``auto`` (per skill, SFT -> DPO -> GRPO when gains stall).
Recipe = Literal["sft", "dpo", "grpo", "auto"]
#: The trainer a skill gets in a round (agents/recipe.py chooses it when ``trainer`` is ``auto``).
Trainer = Literal["sft", "dpo", "grpo"]


class TrainConfig(Settings):
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate of each round")
    round_lr_decay: float = Field(
        0.5, gt=0, le=1, description="each round's peak learning rate is the previous round's times this"
    )
    lr_scheduler: Literal["constant", "linear", "cosine", "constant_with_warmup"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(16, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(256, ge=8, description="tokens per sample; longer samples are truncated")
    batching: Literal["grouped", "sorted", "random"] = Field(
        "grouped",
        description="SFT batches: grouped (transformers' group_by_length, sorted within random windows: 15% "
        "padding in a default round), sorted (sorted over the whole epoch, batches in a seeded random order: "
        "3% padding, 1.24x the useful tokens/s, but test accuracy fell on 2 of 3 default runs, "
        "docs/training.md), random (37%)",
    )
    attention: Literal["auto", "eager", "sdpa"] = Field(
        "auto",
        description="attention kernel while training; auto: eager on a CPU (on a round's short rows its "
        "backward beat SDPA's CPU flash kernel, docs/training.md), sdpa on a GPU",
    )
    padding_free: bool = Field(
        False,
        description="SFT: flatten each batch into one unpadded sequence (position ids keep rows apart); pays "
        "with varlen attention kernels (FlashAttention on a GPU); on a CPU the flattened batch attends densely "
        "(docs/training.md measures both)",
    )
    bf16: bool | Literal["auto"] = Field(
        "auto",
        description="bf16 mixed precision; auto: where the hardware computes bf16 natively (CUDA, AVX-512 "
        "BF16/AMX CPUs)",
    )
    lora: bool = Field(False, description="train a LoRA adapter instead of every weight")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    trainer: Recipe = Field(
        "sft",
        description="sft, dpo or grpo for every skill, or auto: a skill moves SFT -> DPO -> GRPO (TULU 3's "
        "order) when a round on its current trainer gained less than stall_threshold",
    )
    stall_threshold: float = Field(
        0.05, ge=0, le=1, description="auto: a dev accuracy gain below this (absolute) counts as a stall"
    )
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    grpo: GRPOSettings = Field(default_factory=GRPOSettings)
    launcher: Literal["inprocess", "accelerate"] = Field(
        "inprocess",
        description="inprocess: train inside the loop's process; accelerate: run the round's training as "
        "'accelerate launch -m teachloop.training.launch' (several GPUs or nodes, DeepSpeed, FSDP)",
    )
    accelerate_config: Path | None = Field(
        None, description="accelerate config file for the accelerate launcher (accelerate config / docs)"
    )
    accelerate_args: list[str] = Field(
        default_factory=list,
        description="extra 'accelerate launch' arguments, e.g. ['--num_processes', '1', '--cpu']",
    )

    @model_validator(mode="after")
    def _grpo_batches(self) -> TrainConfig:
        if (self.batch_size * self.gradient_accumulation_steps) % self.grpo.num_generations:
            raise ValueError(
                "train.batch_size * train.gradient_accumulation_steps must be a multiple of "
                f"train.grpo.num_generations ({self.grpo.num_generations}): GRPO scores whole groups"
            )
        return self

    def stage_learning_rate(self, trainer: str) -> float:
        return {"dpo": self.dpo.learning_rate, "grpo": self.grpo.learning_rate}.get(
            trainer, self.learning_rate
        )

    def for_round(self, round_: int) -> TrainConfig:
        """This round's settings: later rounds refine what earlier ones taught instead of overwriting it.

        Every trainer's peak learning rate decays by the same factor per round.
        """
        factor = self.round_lr_decay ** (round_ - 1)
        return self.model_copy(
            update={
                "learning_rate": self.learning_rate * factor,
                "dpo": self.dpo.model_copy(update={"learning_rate": self.dpo.learning_rate * factor}),
                "grpo": self.grpo.model_copy(update={"learning_rate": self.grpo.learning_rate * factor}),
            }
        )
