"""Quality criteria and the shipped seed library the CritiQ manager starts from.

A criterion is one checkable property of a good training sample, written so that a judge can
compare two samples under it ("which one ...?") or check one sample ("does it ...?"). The seed
library (``seed.yaml`` beside this module) holds criteria for math, code, logic and
instruction data plus general ones, in this project's own words.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

Domain = Literal["math", "code", "logic", "instruction", "general"]
Origin = Literal["seed", "proposed", "revised"]

SEED_LIBRARY = Path(__file__).resolve().parent / "seed.yaml"


class Criterion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=64)
    domain: Domain = "general"
    description: str = Field(min_length=10, description="what a sample that meets it looks like")
    origin: Origin = "seed"


def slug(text: str) -> str:
    """A criterion name from free text (an LLM's proposal), within the name pattern."""
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:64].strip("_")
    return name or "criterion"


@cache
def seed_library(path: Path = SEED_LIBRARY) -> tuple[Criterion, ...]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(Criterion.model_validate(item) for item in raw["criteria"])
