"""The distilled CritiQ scorer: a tiny random Llama trained as a reward model by real TRL on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trl import RewardTrainer

from teachloop.criteria.distill import (
    METRICS_FILE,
    RewardScorer,
    RewardSettings,
    pairwise_accuracy,
    sample_text,
    train_reward_model,
)

FAST = RewardSettings(learning_rate=1e-3, epochs=4, batch_size=8, max_length=64)


def _pairs(n: int = 24, start: int = 0) -> list[tuple[str, str]]:
    """Chosen and rejected samples differ in one word of one token ("checked" / "guessed") and are
    otherwise the same text: length cannot tell them apart, only what the scorer learned can."""
    pairs = []
    for i in range(start, start + n):
        a, b = 3 + i % 7, 4 + i // 7
        question = f"What is {a} + {b}?"
        chosen = sample_text(question, f"checked {a} + {b} = {a + b}", str(a + b))
        rejected = sample_text(question, f"guessed {a} + {b} = {a + b}", str(a + b))
        pairs.append((chosen, rejected))
    return pairs


def test_trained_scorer_prefers_chosen_and_reloads_identically(tiny_student: Path, tmp_path: Path) -> None:
    pairs = _pairs()
    out = tmp_path / "scorer"
    metrics = train_reward_model(pairs, tiny_student, out, FAST)

    assert metrics["train_loss"] > 0
    # Held-out pairs (questions it never saw) of equal length: the untrained scorer prefers the
    # rejected word on every one (accuracy 0), so only training can pass this.
    held_out = _pairs(16, start=24)
    assert all(len(c) == len(r) for c, r in held_out)
    assert pairwise_accuracy(RewardScorer.load(out), held_out) >= 0.9
    assert pairwise_accuracy(RewardScorer.load(out), [(r, c) for c, r in held_out]) <= 0.1
    assert json.loads((out / METRICS_FILE).read_text()) == metrics
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scorer"]  # no temporary sibling left

    scorer = RewardScorer.load(out)
    assert pairwise_accuracy(scorer, pairs) == metrics["pairwise_accuracy"]
    texts = [text for pair in pairs for text in pair]
    scores = scorer.score(texts)
    assert RewardScorer.load(out).score(texts) == scores
    # Padding must not move the score: texts of different lengths score alike alone and batched.
    assert scorer.score(texts, batch_size=1) == pytest.approx(scores, abs=1e-4)


def test_failed_training_leaves_no_output(
    tiny_student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: RewardTrainer, *args: object, **kwargs: object) -> None:
        raise RuntimeError("killed mid-training")

    monkeypatch.setattr(RewardTrainer, "train", crash)
    out = tmp_path / "scorer"
    with pytest.raises(RuntimeError, match="killed mid-training"):
        train_reward_model(_pairs(4), tiny_student, out, FAST)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_sample_text_omits_an_empty_solution() -> None:
    assert sample_text("What is 3 + 4?", "", "7") == "Question: What is 3 + 4?\nAnswer: 7"
    assert sample_text("What is 3 + 4?", "3 + 4 = 7", "7") == (
        "Question: What is 3 + 4?\nSolution: 3 + 4 = 7\nAnswer: 7"
    )


def test_pairs_longer_than_max_length_are_a_fixable_error(tiny_student: Path, tmp_path: Path) -> None:
    too_short = FAST.model_copy(update={"max_length": 8})
    with pytest.raises(ValueError, match="max_length=8"):
        train_reward_model(_pairs(4), tiny_student, tmp_path / "scorer", too_short)
    assert list(tmp_path.iterdir()) == []
