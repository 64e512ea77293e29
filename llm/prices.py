"""What a teacher model's tokens cost: a price per model name, so that runs whose roles talk to
different models (a hosted planner, a locally served reviser) count each role at its own price,
and so that ``stop.max_cost_usd`` and ``teachloop run --dry-run`` can be given in dollars.

The default table holds list prices (USD per million tokens) of common hosted models, as published
by their providers; ``teacher.llm.prices`` adds to it or overrides it. A model not in the table
(a local server) costs nothing: its tokens are still counted, and ``stop.max_llm_tokens`` bounds them.
"""

from __future__ import annotations

from pydantic import Field

from teachloop.foundation.settings import Settings


class ModelPrice(Settings):
    """One model's price in USD per million tokens."""

    prompt: float = Field(0.0, ge=0, description="USD per million prompt tokens")
    completion: float = Field(0.0, ge=0, description="USD per million completion tokens")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6


#: List prices of hosted models (USD per million tokens, OpenAI's price page, 2026-12).
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(prompt=2.50, completion=10.00),
    "gpt-4o-mini": ModelPrice(prompt=0.15, completion=0.60),
    "gpt-4.1": ModelPrice(prompt=2.00, completion=8.00),
    "gpt-4.1-mini": ModelPrice(prompt=0.40, completion=1.60),
    "gpt-4.1-nano": ModelPrice(prompt=0.10, completion=0.40),
    "o4-mini": ModelPrice(prompt=1.10, completion=4.40),
}

#: What a model missing from the table costs.
FREE = ModelPrice()
