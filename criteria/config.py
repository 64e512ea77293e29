"""Settings of CritiQ mining and criteria scoring."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from teachloop.criteria.library import Domain
from teachloop.foundation.settings import Settings

#: The seed-library domains of the default environment (arithmetic, sequences, logic puzzles).
DEFAULT_DOMAINS: tuple[Domain, ...] = ("math", "logic", "general")


class CriteriaConfig(Settings):
    """CritiQ: quality criteria mined from human preference pairs, used to score generated data."""

    pairs: Path | None = Field(
        None,
        description="preference pairs (JSONL, docs/criteria.md); given: the loop mines criteria at setup",
    )
    file: Path | None = Field(
        None,
        description="criteria already mined (criteria.json from 'teachloop criteria mine'); skips mining",
    )
    scorer: Path | None = Field(
        None,
        description="a distilled reward model ('teachloop criteria distill'): scores samples without LLM calls",
    )
    domains: list[Domain] = Field(
        default_factory=lambda: list(DEFAULT_DOMAINS),
        min_length=1,
        description="seed-library domains the manager starts from (math, code, logic, instruction, general)",
    )
    proposals: int = Field(6, ge=1, le=40, description="criteria proposed at the start")
    votes: int = Field(
        4, ge=1, le=20, description="worker verdicts per pair and criterion (half in swapped order); majority"
    )
    iterations: int = Field(3, ge=1, le=20, description="most judge -> keep/revise/drop passes")
    keep: float = Field(0.75, gt=0, le=1, description="accuracy at which a criterion is kept")
    drop: float = Field(0.5, ge=0, lt=1, description="accuracy at or below which it is dropped and replaced")
    held_out: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="share of pairs kept out of mining to report each criterion's accuracy on",
    )
    temperature: float = Field(0.7, ge=0, le=2, description="sampling temperature of the workers' votes")

    @model_validator(mode="after")
    def _thresholds(self) -> CriteriaConfig:
        if self.drop >= self.keep:
            raise ValueError("teacher.criteria.drop must be below teacher.criteria.keep")
        if self.pairs is not None and self.file is not None:
            raise ValueError("set teacher.criteria.pairs (mine) or teacher.criteria.file (mined), not both")
        return self

    @property
    def enabled(self) -> bool:
        return self.pairs is not None or self.file is not None
