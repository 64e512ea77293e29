"""What every trainer stage shares: TrainingArguments fields, LoRA, saving and metrics.

A stage trains the student in ``student_dir`` and writes the result into ``out_dir`` (a model
directory, or a LoRA adapter whose base is ``student_dir``). Stages write into the directory
they are given; making that write atomic is the caller's job (``train_sft`` for a single
process, ``training.job`` when several processes share one output).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from statistics import fmean
from typing import Any

from peft import LoraConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PrinterCallback, Trainer

from teachloop.foundation.files import atomic_write_json
from teachloop.tracing.tracking import report_to
from teachloop.training.config import TrainConfig
from teachloop.training.progress import ProgressCallback
from teachloop.training.student import bf16_is_native, compute_device, load_student

#: Log keys that are bookkeeping, not training signal; left out of a stage's metrics.
_NOT_METRICS = frozenset({"epoch", "step", "learning_rate", "grad_norm"})
#: The trainer's log of every optimizer step (loss, grad_norm, learning_rate, ...), saved in the
#: model directory it led to, so the two always come from the same training run.
STEPS_FILE = "train_steps.json"


def attention_kernel(settings: TrainConfig) -> str:
    """The attention implementation a stage trains with (``train.attention``; ``auto`` by device)."""
    if settings.attention != "auto":
        return settings.attention
    return "eager" if compute_device() == "cpu" else "sdpa"


def load_for_training(
    student_dir: Path, settings: TrainConfig
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The student in ``student_dir`` in training mode, with the stage's attention kernel."""
    model, tokenizer = load_student(student_dir)
    model.set_attn_implementation(attention_kernel(settings))
    model.train()
    return model, tokenizer


def common_args(
    settings: TrainConfig, output_dir: Path, seed: int, learning_rate: float, epochs: float
) -> dict[str, Any]:
    """TrainingArguments fields every stage sets the same way (schedule, precision, logging)."""
    device = compute_device()
    return {
        "output_dir": str(output_dir),
        "learning_rate": learning_rate,
        "lr_scheduler_type": settings.lr_scheduler,
        "warmup_steps": settings.warmup_steps,
        "num_train_epochs": epochs,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "bf16": bf16_is_native(device) if settings.bf16 == "auto" else settings.bf16,
        "use_cpu": device == "cpu",
        "save_strategy": "no",
        "report_to": report_to(),  # the tracked run's backend (tracing/tracking.py), else none
        "logging_steps": 1,
        "seed": seed,
        "data_seed": seed,
        "disable_tqdm": True,
        "gradient_checkpointing": False,
    }


def lora_config(settings: TrainConfig) -> LoraConfig | None:
    if not settings.lora:
        return None
    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def _stage_name(trainer: Trainer) -> str:
    """``sft``, ``dpo`` or ``grpo`` for the stage's trainer class (subclasses included)."""
    names = [cls.__name__ for cls in type(trainer).__mro__]
    return next((stage for stage in ("sft", "dpo", "grpo") if f"{stage.upper()}Trainer" in names), "train")


def fit_and_save(trainer: Trainer, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> dict[str, float]:
    """Train, save the model, tokenizer and per-step log (``STEPS_FILE``) into ``out_dir``, return
    the stage's metrics.

    Metrics are the trainer's final ones (loss, runtime, samples per second) plus the mean over
    the logged steps of everything the trainer logs (DPO reward margins, GRPO rewards, ...).
    """
    trainer.remove_callback(PrinterCallback)  # progress is the loop's to show, not print()'s
    trainer.add_callback(ProgressCallback(_stage_name(trainer)))
    result = trainer.train()
    trainer.save_model(str(out_dir))
    steps = [e for e in trainer.state.log_history if "loss" in e]
    if trainer.args.should_save:
        tokenizer.save_pretrained(out_dir)
        atomic_write_json(out_dir / STEPS_FILE, steps)
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    metrics["train_loss"] = float(result.training_loss)
    for key in sorted({k for e in steps for k in e} - _NOT_METRICS - {"loss"}):
        values = [float(e[key]) for e in steps if isinstance(e.get(key), int | float)]
        if values:
            metrics[key] = fmean(values)
    return metrics
