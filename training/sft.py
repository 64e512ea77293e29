"""Supervised fine-tuning of the student on a round's selected data, with TRL's SFTTrainer.

Data is conversational prompt/completion, so TRL computes the loss on the answer only. Batches hold
rows of similar length (``train.batching``; training/batching.py for ``sorted``): padding
dominates the cost of short samples on a CPU. LoRA saves an adapter
whose base is the previous round's student; a full fine-tune saves the whole model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from torch.utils.data import Sampler
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from teachloop.foundation.files import atomic_dir
from teachloop.training.batching import LengthSortedSampler
from teachloop.training.common import common_args, fit_and_save, load_for_training, lora_config
from teachloop.training.config import TrainConfig

log = logging.getLogger(__name__)


class AnswerOnlySFTTrainer(SFTTrainer):
    """SFTTrainer whose loss sends only the answer positions through the LM head.

    TRL's fused head scores only labelled positions on Triton devices; elsewhere (a CPU) it projects
    every position, in fp32. A student's prompt is about ten times longer than its answer, so on a
    CPU that projection was half of each step. Selecting the positions with ``logits_to_keep`` gives
    the same loss at half the cost on any device.

    With ``sorted`` batching its batches come from ``LengthSortedSampler`` instead of transformers'
    samplers.
    """

    def __init__(self, *args: Any, batching: str = "grouped", **kwargs: Any) -> None:
        self.batching = batching
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> Sampler[int] | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.batching != "sorted" or dataset is None:
            return super()._get_train_sampler(train_dataset)
        lengths = [len(ids) for ids in dataset["input_ids"]]
        return LengthSortedSampler(lengths, self.args.train_batch_size, self.args.data_seed or self.args.seed)

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
            position_ids=inputs.get("position_ids"),
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
    """``grouped`` batching is transformers' ``group_by_length``; ``sorted`` and ``random`` sample at
    random here (the trainer replaces the sampler for ``sorted``)."""
    return SFTConfig(
        **common_args(settings, output_dir, seed, settings.learning_rate, settings.epochs),
        max_length=settings.max_length,
        train_sampling_strategy="group_by_length" if settings.batching == "grouped" else "random",
    )


def sft_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: Dataset,
    settings: TrainConfig,
    output_dir: Path,
    seed: int,
) -> AnswerOnlySFTTrainer:
    """The round's SFT trainer; with ``settings.padding_free`` its batches are flattened, unpadded rows.

    TRL refuses ``padding_free`` together with ``max_length`` (its flag skips truncation), so the
    padding-free collator is passed in instead: rows are still truncated to ``max_length`` when the
    dataset is prepared, and only the batching changes.
    """
    collator = (
        DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
        if settings.padding_free
        else None
    )
    return AnswerOnlySFTTrainer(
        model=model,
        args=sft_config(settings, output_dir, seed),
        batching=settings.batching,
        data_collator=collator,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(settings),
    )


def fit_sft(
    student_dir: Path, dataset: Dataset, out_dir: Path, settings: TrainConfig, seed: int
) -> dict[str, float]:
    """Train on ``dataset`` (prompt/completion rows), writing the new student into ``out_dir``."""
    model, tokenizer = load_for_training(student_dir, settings)
    trainer = sft_trainer(model, tokenizer, dataset, settings, out_dir / "trainer", seed)
    return fit_and_save(trainer, tokenizer, out_dir)


def train_sft(
    student_dir: Path, dataset: Dataset, out_dir: Path, settings: TrainConfig, seed: int
) -> dict[str, float]:
    """Train on ``dataset`` and save the new student to ``out_dir`` atomically (one process).

    Returns the trainer's final metrics (loss, runtime, samples per second).
    """
    with atomic_dir(out_dir) as tmp:
        return fit_sft(student_dir, dataset, tmp, settings, seed)
