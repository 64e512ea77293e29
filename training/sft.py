"""Supervised fine-tuning of the student on a round's selected data, with TRL's SFTTrainer.

Data is conversational prompt/completion, so TRL computes the loss on the answer only. Rows are
grouped by length (padding dominates the cost of short samples on a CPU). LoRA saves an adapter
whose base is the previous round's student; a full fine-tune saves the whole model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import PrinterCallback
from trl import SFTConfig, SFTTrainer

from teachloop.core.config import TrainConfig
from teachloop.core.files import atomic_dir
from teachloop.training.student import load_student

log = logging.getLogger(__name__)


class AnswerOnlySFTTrainer(SFTTrainer):
    """SFTTrainer whose loss sends only the answer positions through the LM head.

    TRL's fused head scores only labelled positions on Triton devices; elsewhere (a CPU) it projects
    every position, in fp32. A student's prompt is about ten times longer than its answer, so on a
    CPU that projection was half of each step. Selecting the positions with ``logits_to_keep`` gives
    the same loss at half the cost on any device.
    """

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        targets = inputs["labels"][:, 1:]
        positions = (targets != -100).any(dim=0).nonzero().squeeze(-1)
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs.get("attention_mask"),
            use_cache=False,
            logits_to_keep=positions,
        )
        logits = outputs.logits.float()
        kept = targets[:, positions]
        loss_sum = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), kept.reshape(-1), ignore_index=-100, reduction="sum"
        )
        mask = kept != -100
        count = mask.sum() if num_items_in_batch is None else num_items_in_batch
        loss = loss_sum / torch.as_tensor(count, device=loss_sum.device).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        mode = "train" if model.training else "eval"
        correct = ((logits.argmax(-1) == kept) & mask).sum()
        self._metrics[mode]["mean_token_accuracy"].append((correct / mask.sum().clamp(min=1)).item())
        return loss


def sft_config(settings: TrainConfig, output_dir: Path, seed: int) -> SFTConfig:
    return SFTConfig(
        output_dir=str(output_dir),
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_steps,
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        max_length=settings.max_length,
        train_sampling_strategy="group_by_length",
        bf16=settings.bf16,
        use_cpu=not torch.cuda.is_available(),
        save_strategy="no",
        report_to="none",
        logging_steps=5,
        seed=seed,
        data_seed=seed,
        disable_tqdm=True,
        gradient_checkpointing=False,
    )


def train_sft(
    student_dir: Path, dataset: Dataset, out_dir: Path, settings: TrainConfig, seed: int
) -> dict[str, float]:
    """Train on ``dataset`` (prompt/completion rows) and save the new student to ``out_dir``.

    Returns the trainer's final metrics (loss, runtime, samples per second).
    """
    model, tokenizer = load_student(student_dir)
    model.train()
    peft_config = (
        LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
        if settings.lora
        else None
    )
    with atomic_dir(out_dir) as tmp:
        trainer = AnswerOnlySFTTrainer(
            model=model,
            args=sft_config(settings, tmp / "trainer", seed),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        trainer.remove_callback(PrinterCallback)  # progress is the loop's to show, not print()'s
        result = trainer.train()
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(tmp)
        _remove_trainer_dir(tmp / "trainer")
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    metrics["train_loss"] = float(result.training_loss)
    return metrics


def _remove_trainer_dir(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
