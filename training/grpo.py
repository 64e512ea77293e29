"""RL with verifiable rewards: TRL's GRPOTrainer with the environment's verifier as the reward.

GRPO samples a group of completions per prompt and pushes the policy towards the completions
that scored above their group's mean, so a prompt whose completions all score the same teaches
nothing; ``training.rollouts`` therefore sends only prompts the student sometimes but not always
solves. The reward is the verifier's plus a small format reward (``training.rewards``). Kept
cheap for a CPU: few completions per prompt, short completions, no reference model (beta 0).
With ``use_vllm`` TRL generates with vLLM (CUDA only; checked before a run starts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from teachloop.environments.base import Environment
from teachloop.training.common import common_args, fit_and_save, load_for_training, lora_config
from teachloop.training.config import TrainConfig
from teachloop.training.rewards import format_reward, verifier_reward


def grpo_config(settings: TrainConfig, output_dir: Path, seed: int) -> GRPOConfig:
    grpo = settings.grpo
    weights = [1.0] + ([grpo.format_weight] if grpo.format_weight > 0 else [])
    vllm: dict[str, Any] = {}
    if grpo.use_vllm:
        vllm = {"use_vllm": True, "vllm_mode": grpo.vllm_mode}
        if grpo.vllm_server_base_url:
            vllm["vllm_server_base_url"] = grpo.vllm_server_base_url
    return GRPOConfig(
        **common_args(settings, output_dir, seed, grpo.learning_rate, grpo.epochs),
        num_generations=grpo.num_generations,
        max_completion_length=grpo.max_completion_length,
        temperature=grpo.temperature,
        beta=grpo.beta,
        reward_weights=weights,
        **vllm,
    )


def fit_grpo(
    student_dir: Path,
    dataset: Dataset,
    out_dir: Path,
    settings: TrainConfig,
    seed: int,
    env: Environment,
) -> dict[str, float]:
    """Train on conversational prompts with a ``task`` column (JSON), writing into ``out_dir``."""
    model, tokenizer = load_for_training(student_dir, settings)
    rewards: list[Any] = [verifier_reward(env)]
    if settings.grpo.format_weight > 0:
        rewards.append(format_reward(env))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=grpo_config(settings, out_dir / "trainer", seed),
        train_dataset=dataset.select_columns(["prompt", "task"]),
        processing_class=tokenizer,
        peft_config=lora_config(settings),
    )
    return fit_and_save(trainer, tokenizer, out_dir)
