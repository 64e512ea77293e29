"""Direct preference optimisation (TRL DPOTrainer) on pairs made from the student's own samples.

Pairs come from ``training.rollouts``: chosen is a verified-correct answer (the student's own
where it had one, else the gold answer), rejected is one of the student's verified failures —
on-policy pairs, which work better than stale ones. The reference is the round's starting
student: its log-probabilities are computed once before training (no second model in memory),
or, with LoRA, the base with the adapter switched off.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from teachloop.training.common import common_args, fit_and_save, load_for_training, lora_config
from teachloop.training.config import TrainConfig


def dpo_config(settings: TrainConfig, output_dir: Path, seed: int) -> DPOConfig:
    dpo = settings.dpo
    return DPOConfig(
        **common_args(settings, output_dir, seed, dpo.learning_rate, dpo.epochs),
        beta=dpo.beta,
        max_length=settings.max_length,
        precompute_ref_log_probs=not settings.lora,
    )


def fit_dpo(
    student_dir: Path, dataset: Dataset, out_dir: Path, settings: TrainConfig, seed: int
) -> dict[str, float]:
    """Train on conversational prompt/chosen/rejected rows, writing the new student into ``out_dir``."""
    model, tokenizer = load_for_training(student_dir, settings)
    trainer = DPOTrainer(
        model=model,
        args=dpo_config(settings, out_dir / "trainer", seed),
        train_dataset=dataset.select_columns(["prompt", "chosen", "rejected"]),
        processing_class=tokenizer,
        peft_config=lora_config(settings),
    )
    return fit_and_save(trainer, tokenizer, out_dir)
