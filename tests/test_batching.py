"""SFT batches of nearly equal length (``train.batching=sorted``): padding is most of a CPU step's
waste on short rows, so they must pad less than transformers' grouping (the default) and random
batches, while still seeing every row once per epoch and not training from the shortest rows to
the longest."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset

from teachloop.training.batching import LengthSortedSampler
from teachloop.training.config import TrainConfig
from teachloop.training.sft import sft_trainer
from teachloop.training.student import load_student


def _batches(sampler: LengthSortedSampler) -> list[list[int]]:
    order = list(sampler)
    return [order[i : i + sampler.batch_size] for i in range(0, len(order), sampler.batch_size)]


def test_sorted_batches_hold_every_row_once_with_near_equal_lengths_in_shuffled_order() -> None:
    lengths = [random.Random(i).randint(10, 140) for i in range(200)]
    sampler = LengthSortedSampler(lengths, batch_size=16, seed=0)
    batches = _batches(sampler)
    assert sorted(i for b in batches for i in b) == list(range(200))
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert max(spreads) <= 20  # 200 rows over 130 lengths: a batch of 16 spans a few lengths
    shortest = [min(lengths[i] for i in b) for b in batches]
    assert shortest != sorted(shortest) and shortest != sorted(shortest, reverse=True)
    assert _batches(LengthSortedSampler(lengths, 16, seed=0)) == batches
    assert _batches(LengthSortedSampler(lengths, 16, seed=1)) != batches
    assert _batches(sampler) != batches  # the next epoch draws a new order


def _rows() -> list[dict[str, Any]]:
    system = {"role": "system", "content": "Answer with the final answer only."}
    rng = random.Random(0)
    rows = []
    for i in range(48):
        words = " ".join(rng.choice(["cat", "dog", "bird", "fish"]) for _ in range(rng.randint(1, 30)))
        rows.append(
            {
                "prompt": [system, {"role": "user", "content": f"Reverse the words: {words}"}],
                "completion": [{"role": "assistant", "content": str(i)}],
            }
        )
    return rows


def _padding_share(tiny_student: Path, tmp_path: Path, batching: str) -> float:
    model, tokenizer = load_student(tiny_student)
    settings = TrainConfig(bf16=False, batch_size=4, batching=batching)  # type: ignore[arg-type]
    trainer = sft_trainer(model, tokenizer, Dataset.from_list(_rows()), settings, tmp_path / batching, seed=0)
    real = trained = 0
    for batch in trainer.get_train_dataloader():
        real += int(batch["attention_mask"].sum())
        trained += batch["input_ids"].numel()
    return 1 - real / trained


@pytest.mark.parametrize("other", ["grouped", "random"])
def test_sorted_sft_batches_pad_less_than_the_alternatives(
    tiny_student: Path, tmp_path: Path, other: str
) -> None:
    sorted_share = _padding_share(tiny_student, tmp_path, "sorted")
    assert sorted_share < 0.05
    assert sorted_share < _padding_share(tiny_student, tmp_path, other) / 2
