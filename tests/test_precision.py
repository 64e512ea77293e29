"""``auto`` precision: bf16 only where the hardware computes it natively.

On an AVX2-only CPU torch emulates bf16, and evaluation ran 3-4x slower than in float32
(docs/training.md), so a default of bf16 there would make the loop slower, not faster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from teachloop.training.common import common_args
from teachloop.training.config import TrainConfig
from teachloop.training.student import weights_dtype


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_follows_the_cpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, native: bool
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert weights_dtype("auto", "cpu") == ("bfloat16" if native else "float32")
    args = common_args(TrainConfig(), tmp_path, seed=0, learning_rate=1e-4, epochs=1)
    assert args["bf16"] is native
    assert args["use_cpu"] is True


def test_an_explicit_precision_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert weights_dtype("bfloat16", "cpu") == "bfloat16"
    args = common_args(TrainConfig(bf16=True), tmp_path, seed=0, learning_rate=1e-4, epochs=1)
    assert args["bf16"] is True
