"""Settings of the GRPO recipe (training/grpo.py): RLVR with the environment's verifier as reward."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from teachloop.foundation.settings import Settings


class GRPOSettings(Settings):
    """RL with verifiable rewards (TRL GRPOTrainer): the environment's verifier is the reward."""

    learning_rate: float = Field(
        5e-6, gt=0, description="peak learning rate of round 1 (decays per round like train.learning_rate)"
    )
    num_generations: int = Field(4, ge=2, description="completions per prompt in a GRPO group")
    max_completion_length: int = Field(
        16, ge=1, description="tokens per GRPO completion (short keeps a CPU fast)"
    )
    temperature: float = Field(1.0, gt=0, description="sampling temperature of GRPO completions")
    beta: float = Field(
        0.0, ge=0, description="KL weight to a reference model (0: no reference model is loaded)"
    )
    probe_samples: int = Field(
        4,
        ge=2,
        description="samples per prompt that measure its pass rate; only 0 < pass rate < 1 goes to GRPO",
    )
    format_weight: float = Field(
        0.2, ge=0, description="weight of the format reward (a bare answer) beside the verifier's (weight 1)"
    )
    epochs: float = Field(1.0, gt=0, description="passes over the round's GRPO prompts")
    use_vllm: bool = Field(False, description="generate GRPO completions with vLLM (TRL use_vllm; CUDA only)")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="colocate: vLLM shares the training GPUs; server: a running 'trl vllm-serve'"
    )
    vllm_server_base_url: str | None = Field(
        None, description="URL of the 'trl vllm-serve' server (server mode)"
    )
