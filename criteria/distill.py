"""CritiQ's distilled scorer: a small Bradley-Terry reward model trained on criteria-labelled pairs.

The CritiQ judge needs LLM calls for every comparison, which is too slow and costly to rank every
training sample a round makes. Its verdicts on a few pairs train a reward model (TRL
``RewardTrainer``) that then scores samples in bulk, offline. Training and scoring read the same
text (``sample_text``), so a score means what the pairs taught.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from datasets import Dataset
from pydantic import BaseModel, ConfigDict, Field
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    set_seed,
)
from trl import RewardConfig, RewardTrainer

from teachloop.foundation.errors import ConfigError
from teachloop.foundation.files import atomic_dir

log = logging.getLogger(__name__)

METRICS_FILE = "reward_metrics.json"


class RewardSettings(BaseModel):
    """The defaults fit a few dozen pairs on a CPU in seconds to minutes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(default=1e-4, gt=0)
    epochs: float = Field(default=3.0, gt=0)
    batch_size: int = Field(default=8, ge=1)
    max_length: int = Field(
        default=256, ge=8, description="pairs with a longer text are left out of training"
    )
    seed: int = 0


def sample_text(question: str, solution: str, answer: str) -> str:
    """One layout for training and scoring alike, so the scorer never sees a text shaped unlike its pairs."""
    lines = [f"Question: {question}"]
    if solution.strip():
        lines.append(f"Solution: {solution}")
    lines.append(f"Answer: {answer}")
    return "\n".join(lines)


class RewardScorer:
    """A trained reward model; its scores are raw logits, meaningful only relative to each other."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, path: Path) -> RewardScorer:
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
        return cls(model, AutoTokenizer.from_pretrained(path))

    def score(self, texts: list[str], batch_size: int = 16) -> list[float]:
        """Texts end in EOS as TRL ended them in training, so the reward is read where it was learned."""
        eos = self.tokenizer.eos_token
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [t if t.endswith(eos) else t + eos for t in texts[start : start + batch_size]]
                inputs = self.tokenizer(batch, padding=True, return_tensors="pt").to(self.model.device)
                scores.extend(self.model(**inputs).logits[:, 0].float().tolist())
        return scores


def pairwise_accuracy(scorer: RewardScorer, pairs: list[tuple[str, str]]) -> float:
    """How often the scorer agrees with the labels: whether it learned the criteria behind the pairs."""
    if not pairs:
        raise ValueError("pairwise accuracy needs at least one (chosen, rejected) pair")
    chosen = scorer.score([c for c, _ in pairs])
    rejected = scorer.score([r for _, r in pairs])
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)


def train_reward_model(
    pairs: list[tuple[str, str]], base_model: Path, out_dir: Path, settings: RewardSettings
) -> dict[str, float]:
    """Train on (chosen, rejected) texts and publish model, tokenizer and metrics into ``out_dir``.

    ``out_dir`` appears whole or not at all, so a crash never leaves a scorer that loads but is
    half-trained. The new one-logit head is random, hence seeded before the model loads.
    """
    if not pairs:
        raise ConfigError("no preference pairs to train the reward model on; label some pairs first")
    set_seed(settings.seed)
    model = AutoModelForSequenceClassification.from_pretrained(base_model, num_labels=1, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    dataset = Dataset.from_dict({"chosen": [c for c, _ in pairs], "rejected": [r for _, r in pairs]})
    with atomic_dir(out_dir) as tmp:
        # RewardTrainer gives the tokenizer a pad token (EOS) if it lacks one and copies its id into
        # the model config, where the classifier looks for the last real token; save_model keeps both.
        trainer = RewardTrainer(
            model=model,
            args=_reward_config(settings, tmp),
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        kept = len(trainer.train_dataset)
        if kept == 0:
            raise ConfigError(
                f"every preference pair is longer than max_length={settings.max_length} tokens; raise it"
            )
        if kept < len(pairs):
            log.warning(
                "%d of %d pairs exceed %d tokens and were left out",
                len(pairs) - kept,
                len(pairs),
                settings.max_length,
            )
        trainer.remove_callback(PrinterCallback)  # progress is the caller's to show, not print()'s
        result = trainer.train()
        trainer.save_model(str(tmp))
        metrics = {
            "train_loss": float(result.training_loss),
            "pairwise_accuracy": pairwise_accuracy(RewardScorer(model, tokenizer), pairs),
        }
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def _reward_config(settings: RewardSettings, output_dir: Path) -> RewardConfig:
    return RewardConfig(
        output_dir=str(output_dir),
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        max_length=settings.max_length,
        bf16=False,  # TRL defaults to bf16; the distilled scorer trains in float32 on any device
        activation_checkpointing=False,  # TRL defaults it on; nothing here needs it
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
        seed=settings.seed,
        data_seed=settings.seed,
    )


def distillation_pairs(samples: list[tuple[str, str, float]], min_gap: float) -> list[tuple[str, str]]:
    """(chosen, rejected) texts from criteria-scored samples ``(group, text, score)``: within each
    group (a round's skill), the best is paired with the worst, the second best with the second
    worst, and so on while their scores differ by at least ``min_gap``; each sample is used once."""
    groups: dict[str, list[tuple[float, str]]] = {}
    for group, text, score in samples:
        groups.setdefault(group, []).append((score, text))
    pairs = []
    for members in groups.values():
        ranked = sorted(members, key=lambda m: -m[0])
        for (high, chosen), (low, rejected) in zip(
            ranked, reversed(ranked[len(ranked) // 2 :]), strict=False
        ):
            if high - low >= min_gap:
                pairs.append((chosen, rejected))
    return pairs


def percentiles(scores: list[float]) -> list[float]:
    """Scores as their rank in [0, 1] (ties share the mean rank): a reward model's logits have no
    fixed scale, their order does."""
    if len(scores) < 2:
        return [0.5] * len(scores)
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 / (len(scores) - 1)
        i = j + 1
    return ranks
