"""Padding-free SFT batches train exactly what padded batches train: flattening a batch into one
sequence (position ids restarting per row) must keep rows from attending to each other and keep the
loss on the answers only. A collator or a forward pass that lost the position ids would let each row
see the rows before it, and its losses would part from the padded run's at the first step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset

from teachloop.training.config import TrainConfig
from teachloop.training.sft import sft_trainer
from teachloop.training.student import load_student

SYSTEM = {"role": "system", "content": "Answer with the final answer only."}
#: Prompts of different lengths, so that padded batches do pad.
QUESTIONS = [
    ("2 + 3 =", "5"),
    ("What is seven plus one, written as a number?", "8"),
    ("4 + 4 =", "8"),
    ("Reverse the words: cat dog bird fish", "fish bird dog cat"),
    ("9 + 0 =", "9"),
    ("How many letters does the word seven have?", "5"),
    ("1 + 1 =", "2"),
    ("10 - 3 =", "7"),
]


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "prompt": [SYSTEM, {"role": "user", "content": q}],
            "completion": [{"role": "assistant", "content": a}],
        }
        for q, a in QUESTIONS
    ]


def _train(
    tiny_student: Path, tmp_path: Path, padding_free: bool
) -> tuple[list[float], dict[str, torch.Tensor], int]:
    settings = TrainConfig(
        bf16=False, batch_size=4, learning_rate=1e-3, lr_scheduler="constant", padding_free=padding_free
    )
    model, tokenizer = load_student(tiny_student)
    model.train()
    trainer = sft_trainer(
        model, tokenizer, Dataset.from_list(_rows()), settings, tmp_path / str(padding_free), seed=0
    )
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}, batch["input_ids"].shape[0]


def test_padding_free_matches_padded_training(tiny_student: Path, tmp_path: Path) -> None:
    padded_losses, padded_weights, padded_rows = _train(tiny_student, tmp_path, padding_free=False)
    free_losses, free_weights, free_rows = _train(tiny_student, tmp_path, padding_free=True)
    assert (padded_rows, free_rows) == (4, 1)  # four padded rows per batch; one flattened sequence
    assert len(padded_losses) == len(free_losses) == 2
    assert free_losses == pytest.approx(padded_losses, rel=1e-4)
    # the two steps trained on different rows
    assert padded_losses[1] != pytest.approx(padded_losses[0], rel=1e-3)
    for name, tensor in padded_weights.items():
        torch.testing.assert_close(free_weights[name], tensor, rtol=1e-4, atol=1e-5)
