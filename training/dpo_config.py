"""Settings of the DPO recipe (training/dpo.py)."""

from __future__ import annotations

from pydantic import Field

from teachloop.foundation.settings import Settings


class DPOSettings(Settings):
    """Direct preference optimisation on pairs made from the student's own samples (TRL DPOTrainer)."""

    learning_rate: float = Field(
        5e-6, gt=0, description="peak learning rate of round 1 (decays per round like train.learning_rate)"
    )
    beta: float = Field(
        0.1, gt=0, description="strength of the pull towards the reference (the round's start)"
    )
    samples: int = Field(
        4, ge=1, description="completions sampled per prompt to find chosen/rejected answers"
    )
    temperature: float = Field(1.0, gt=0, description="sampling temperature of those completions")
    epochs: float = Field(1.0, gt=0, description="passes over the round's pairs (few: DPO overfits fast)")
