"""What a role's teacher LLM calls cost: counted by the client, summed per round in the loop's state
and summary (a light module: the state imports it without the openai SDK)."""

from __future__ import annotations

from pydantic import BaseModel


class RoleUsage(BaseModel):
    """What one role spent. Tokens and cost count requests the server answered, not cache hits."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    malformed: int = 0
    repaired: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: RoleUsage) -> RoleUsage:
        data = {k: getattr(self, k) + getattr(other, k) for k in type(self).model_fields}
        data["cost_usd"] = round(data["cost_usd"], 6)
        return RoleUsage(**data)
