"""Length-sorted SFT batches: almost no padding, in a random order of batches.

A round's rows differ in length by skill (a family-relationships prompt is three times a sum's),
so a batch of random rows pads every row to its longest. transformers' ``group_by_length`` sorts
only within random windows of a few batches and puts the longest batch first, which left 15% of
a default round's trained tokens as padding; sorting the whole epoch leaves 3%
(``bench/training_cpu.py``, docs/training.md). The order of the batches is then shuffled with the
run's seed, so training does not walk from the shortest rows to the longest. It is not the
default (``train.batching=grouped`` is): rows of one length are nearly one skill, and in the
default loop these batches cost two of three seeds 14–27 points of test accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthSortedSampler(Sampler[int]):
    """Indices whose consecutive ``batch_size`` slices are rows of nearly equal length.

    Rows of equal length are ordered at random (seeded), so two rows of the same length do not
    always share a batch; each epoch draws a new order from ``seed`` and the epoch's number. The
    data loader cuts the stream into consecutive slices of ``batch_size``, so a last, smaller batch
    (the shortest rows) must come last.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        shuffled = torch.randperm(len(self.lengths), generator=generator).tolist()
        ordered = sorted(shuffled, key=lambda i: self.lengths[i])  # stable: ties keep the random order
        rest = len(ordered) % self.batch_size
        full = [ordered[i : i + self.batch_size] for i in range(rest, len(ordered), self.batch_size)]
        for b in torch.randperm(len(full), generator=generator).tolist():
            yield from full[b]
        yield from ordered[:rest]
