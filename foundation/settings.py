"""The base of every settings model: frozen, and unknown keys are errors (a typo must not silently
fall back to a default). Each package keeps its settings beside the code they configure; the run
configuration (loop/config.py) only composes them."""

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
